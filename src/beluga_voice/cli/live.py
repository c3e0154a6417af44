"""Live input at the command line (``beluga transcribe -`` and ``beluga listen``): every result is
printed as the audio arrives, in the same formats as a recording.

Ctrl-C is how a live stream usually ends. The first one stops the input; the provider still answers
for the audio it already has, those finals are written, and the command exits cleanly. A second
Ctrl-C stops at once (exit 130, like any interrupted command).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from beluga_voice.audio.live import LiveStream, PcmFormat, PipeReader
from beluga_voice.audio.pacer import paced
from beluga_voice.audio.reader import RawFormat
from beluga_voice.cli import EXIT_INTERRUPTED, EXIT_OK, UsageError
from beluga_voice.cli.output import Output, print_usage, status_display, streams, write_results
from beluga_voice.cli.progress import is_terminal
from beluga_voice.errors import AudioFormatError
from beluga_voice.stt.model import Transcript
from beluga_voice.stt.registry import create_provider
from beluga_voice.stt.serializers import serialize
from beluga_voice.usage import SessionUsage


async def transcribe_stdin(args: argparse.Namespace, options: dict[str, Any]) -> int:
    """``beluga transcribe -``: a WAV stream or declared raw PCM, transcribed as it arrives.

    Exits 130 when Ctrl-C cut the input short (the transcript covers the audio read until then).
    """
    if is_terminal(sys.stdin):
        raise UsageError(
            "stdin is a terminal, not audio: pipe audio in (e.g. `arecord -f S16_LE -r 16000 -c 1 | "
            "beluga transcribe -`), or use `beluga listen` for the microphone"
        )
    raw = (
        PcmFormat(args.sample_rate or RawFormat.sample_rate, args.channels or RawFormat.channels)
        if args.raw
        else None
    )
    pipe = PipeReader(sys.stdin.buffer, "<stdin>")
    stream = LiveStream(pipe, "<stdin>", raw)
    with CtrlC(pipe.stop) as ctrl_c:
        try:
            await stream.start()  # a bad header fails here, before any model loads or connection opens
            await transcribe_live(args, stream, options, ctrl_c, file_id="stdin", realtime=args.realtime)
        except AudioFormatError:
            if ctrl_c.pressed and stream.format is None:  # Ctrl-C before a whole header: nothing to do
                return EXIT_INTERRUPTED
            raise
        finally:
            pipe.stop()  # a failed run stops reading too
    return EXIT_INTERRUPTED if ctrl_c.pressed else EXIT_OK


async def transcribe_live(
    args: argparse.Namespace,
    stream: LiveStream,
    options: dict[str, Any],
    ctrl_c: CtrlC,
    *,
    file_id: str,
    realtime: bool = False,
) -> Transcript:
    """Stream ``stream`` to the provider and write the results (jsonl and text as they arrive)."""
    streamed = streams(args.format, live=True)
    session = SessionUsage()  # the provider's streams report what they sent here, for --usage
    with Output(args.output) as out, session.collecting():
        async with create_provider(args.provider, **options) as provider:
            chunks: AsyncIterator[bytes] = stream.chunks(provider.sample_rate, provider.channels)
            if realtime:
                chunks = paced(chunks, provider.sample_rate, provider.channels)
            transcript = Transcript(provider=args.provider)
            display = status_display(stream.name, None, live=True)
            await write_results(provider.stream(chunks), transcript, out, display, fmt=args.format, live=True)
        transcript.duration = round(stream.seconds, 3)
        transcript.language_code = transcript.dominant_language()
        if not streamed:
            out.write(serialize(transcript, args.format, file_id=file_id))
        out.finish()
    if not ctrl_c.pressed and (error := stream.ending_error()):
        raise error  # after the transcript of what did arrive is written: nothing is lost
    if not transcript.text:
        print(f"beluga: note: no speech found in {stream.name}", file=sys.stderr)
    if args.usage:
        print_usage(session, args.provider, stream.seconds, args.rate_per_minute)
    return transcript


class CtrlC:
    """While entered: the first Ctrl-C calls ``stop`` (the input ends, the results still come) and
    sets :attr:`pressed`; the next one raises KeyboardInterrupt as usual."""

    def __init__(self, stop: Callable[[], None]) -> None:
        self.stop = stop
        self.pressed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> CtrlC:
        self._loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no loop signal handlers (Windows)
            self._loop.add_signal_handler(signal.SIGINT, self._first)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and not self.pressed:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.remove_signal_handler(signal.SIGINT)

    def _first(self) -> None:
        self.pressed = True
        assert self._loop is not None
        self._loop.remove_signal_handler(signal.SIGINT)  # the next Ctrl-C interrupts at once
        if is_terminal(sys.stderr):
            print(
                "\r\x1b[Kbeluga: stopping: finishing the transcript of the audio so far "
                "(Ctrl-C again to quit now)",
                file=sys.stderr,
            )
        self.stop()
