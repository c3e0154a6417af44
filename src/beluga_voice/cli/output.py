"""What the transcribing commands write: the transcript (stdout or a file), results as they arrive,
the status line on a terminal, and the usage estimate. Shared by ``transcribe`` and ``listen``.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import TextIO

from beluga_voice.cli.progress import ProgressBar, StatusLine, is_terminal
from beluga_voice.errors import BelugaError
from beluga_voice.stt.model import Transcript, TranscriptResult
from beluga_voice.stt.serializers import OutputFormat, to_jsonl_line, to_text
from beluga_voice.usage import (
    DEFAULT_RATE_PER_MINUTE,
    SessionUsage,
    StreamUsage,
    billing_rule_for,
    format_usage,
)

LONG_FILE_SECONDS = 30.0
"""Files at least this long get a progress bar (on a terminal only)."""

Display = Callable[[TranscriptResult | None], None]
"""Shows each result on stderr; called with ``None`` to clear the line before other output."""


def streams(fmt: OutputFormat, live: bool) -> bool:
    """Whether results are written as they arrive: jsonl always, text when the audio is live."""
    return fmt == "jsonl" or (live and fmt == "text")


def event_line(result: TranscriptResult, fmt: OutputFormat, provider: str) -> str:
    """What a streamed format writes for one result: every event in jsonl, finals in text."""
    if fmt == "jsonl":
        return to_jsonl_line(result)
    if result.is_final:
        single = Transcript(provider=provider)
        single.add(result)
        return to_text(single)
    return ""


async def write_results(
    results: AsyncIterator[TranscriptResult],
    transcript: Transcript,
    out: Output,
    display: Display,
    *,
    fmt: OutputFormat,
    live: bool,
) -> None:
    """Collect the finals into ``transcript``; streamed formats are written line by line as they arrive."""
    streamed = streams(fmt, live)
    try:
        async for result in results:
            transcript.add(result)
            if streamed and (line := event_line(result, fmt, transcript.provider)):
                display(None)
                out.write(line)
            display(result)
    finally:
        display(None)
        # a failure here (stdout closed) ends the provider's stream now, not at interpreter exit
        if (aclose := getattr(results, "aclose", None)) is not None:
            await aclose()


def status_display(name: str, duration: float | None, *, live: bool) -> Display:
    """What stderr shows while results arrive: partials (live), a progress bar (long files), or nothing."""
    if not is_terminal(sys.stderr):
        return lambda result: None
    status = StatusLine(sys.stderr)
    if live:

        def show_partial(result: TranscriptResult | None) -> None:
            if result is None or result.is_final:
                status.clear()
            else:
                status.show(f"{result.speaker}: {result.text}" if result.speaker else result.text)

        return show_partial
    if duration is None or duration < LONG_FILE_SECONDS:
        return lambda result: None
    bar = ProgressBar(Path(name).name, duration, status)

    def show_progress(result: TranscriptResult | None) -> None:
        if result is None:
            bar.close()
        else:
            bar.update(result.end)

    return show_progress


def print_usage(session: SessionUsage, provider: str, duration: float, rate: float | None) -> None:
    """The --usage line: audio seconds, requests and the estimated cost at ``rate`` per minute."""
    rate = DEFAULT_RATE_PER_MINUTE if rate is None else rate
    print(
        f"beluga: usage: {format_usage(reported_usage(session, provider, duration), rate)}", file=sys.stderr
    )


def reported_usage(session: SessionUsage, provider: str, duration: float) -> SessionUsage | StreamUsage:
    """What the provider's stream telemetry reported (reconnects and replays included).

    A provider that does not report its streams is taken to have sent the audio once, on one
    request, billed by its provider's rule (nothing for providers without one).
    """
    if session.sources:
        return session
    return StreamUsage(
        provider, audio_seconds=duration, requests=(duration,), billing=billing_rule_for(provider)
    )


class Output:
    """stdout or a file, opened at the first write so a failed run leaves no empty file behind."""

    def __init__(self, path: str | None) -> None:
        self.path = None if path in (None, "-") else Path(path)
        self._file: TextIO | None = None

    def __enter__(self) -> Output:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._file is not None and self._file is not sys.stdout:
            self._file.close()
        self._file = None

    def write(self, text: str) -> None:
        if text:
            self._guarded(lambda file: file.write(text))

    def finish(self) -> None:
        """A successful run: the file exists even when there was nothing to write (no speech)."""
        self._guarded(lambda file: None)

    def _guarded(self, action: Callable[[TextIO], object]) -> None:
        try:
            if self._file is None:
                self._file = sys.stdout if self.path is None else self.path.open("w", encoding="utf-8")
            action(self._file)
            self._file.flush()
        except OSError as exc:
            if self.path is None or isinstance(exc, BrokenPipeError):
                raise
            raise BelugaError(f"{self.path}: cannot write the transcript: {exc.strerror or exc}") from exc
