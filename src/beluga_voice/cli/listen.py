"""``beluga listen``: transcribe the microphone live until Ctrl-C (needs the ``mic`` extra)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from beluga_voice.audio.chunker import DEFAULT_CHUNK_MS
from beluga_voice.audio.live import LiveStream, PcmFormat
from beluga_voice.audio.mic import DEFAULT_MAX_QUEUED_MS, Microphone, default_input_rate
from beluga_voice.cli import EXIT_OK
from beluga_voice.cli.live import CtrlC, transcribe_live
from beluga_voice.cli.transcribe import (
    _check_output,
    add_output_arguments,
    add_provider_arguments,
    check_common_arguments,
    provider_options,
)

EXAMPLES = """\
examples:
  beluga listen
  beluga listen --speakers --format jsonl
  beluga listen --provider aws --region eu-west-1 -o notes.txt
  beluga listen --device 2

Finals are printed as they are spoken (partials on the terminal's status line); Ctrl-C stops
listening, prints the last finals and exits 0. Needs `pip install 'beluga-voice[mic]'`.
Exit codes: 0 success, 1 runtime error (service failure), 2 usage error (no microphone, no extra)."""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "listen",
        help="transcribe the microphone live",
        description="Transcribe the microphone as you speak, until Ctrl-C (mic extra).",
        epilog=EXAMPLES,
    )
    add_provider_arguments(parser)
    add_output_arguments(parser)
    microphone = parser.add_argument_group("microphone")
    microphone.add_argument(
        "--device",
        type=_device,
        metavar="ID|NAME",
        help="input device: its number or part of its name, from `python -m sounddevice` "
        "(default: the system's default input)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_common_arguments(args)
    if args.output and args.output != "-":
        _check_output(Path(args.output), "-")
    return asyncio.run(listen(args))


async def listen(args: argparse.Namespace) -> int:
    """Record at the device's own rate (converted on the way, so any device works) until Ctrl-C."""
    rate = default_input_rate(args.device)  # no extra, no PortAudio, no device: one line, before the model
    async with Microphone(rate, 1, device=args.device) as mic:
        stream = LiveStream(mic, "microphone", PcmFormat(rate, 1))
        with CtrlC(mic.close) as ctrl_c:
            await transcribe_live(args, stream, provider_options(args), ctrl_c, file_id="microphone")
    if mic.dropped_chunks:
        lost = mic.dropped_chunks * DEFAULT_CHUNK_MS / 1000
        print(
            f"beluga: warning: {lost:.1f} s of microphone audio were dropped because transcription fell "
            f"more than {DEFAULT_MAX_QUEUED_MS / 1000:g} s behind; free the CPU or use a faster provider",
            file=sys.stderr,
        )
    return EXIT_OK


def _device(text: str) -> int | str:
    return int(text) if text.isdigit() else text
