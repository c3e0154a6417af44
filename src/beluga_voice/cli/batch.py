"""``beluga transcribe`` with many inputs: the command-line shell over :mod:`beluga_voice.batch`.

Used when there is more than one input, a folder or glob, ``--output-dir``, ``--manifest`` or
``--ray``; a single file without those keeps the one-file behaviour (transcript on stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from beluga_voice.batch import (
    DEFAULT_MAX_STREAMS,
    BatchJob,
    JobProgress,
    JobReport,
    TaskResult,
    collect_inputs,
    run_job,
)
from beluga_voice.batch.inputs import has_glob, is_url
from beluga_voice.cli import EXIT_ERROR, EXIT_OK, UsageError, whole_number
from beluga_voice.cli.progress import StatusLine, is_terminal
from beluga_voice.stt.registry import DEFAULT_PROVIDER, create_provider

LOCAL_RAY = ""
"""``--ray`` given without an address: start a private local Ray instance."""

DESCRIPTION = """\
Several files, folders (searched recursively for .wav .flac .ogg .oga .opus), globs or a manifest,
one output per input under --output-dir, mirroring the input folders. Re-running skips finished
outputs; failures go to DIR/_failures.jsonl and the rest go on. Examples:
  beluga transcribe calls/ --output-dir out --format json
  beluga transcribe 'archive/**/*.flac' --output-dir out --workers 2
  beluga transcribe --manifest todo.jsonl --output-dir out --ray 10.0.0.5:6379
  beluga transcribe calls/ --output-dir out --provider aws --max-streams 25"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("many recordings (batch)", DESCRIPTION)
    group.add_argument(
        "--output-dir", metavar="DIR", help="write one transcript per input under DIR (created if needed)"
    )
    group.add_argument(
        "--manifest",
        metavar="FILE",
        help='inputs listed in FILE: one path or URL per line, or JSON lines {"path": ..., '
        '"language_code": ..., "speakers": true}; relative paths are relative to FILE',
    )
    group.add_argument("--overwrite", action="store_true", help="redo inputs whose output already exists")
    group.add_argument(
        "--workers",
        type=whole_number(),
        metavar="N",
        help="local worker processes (one model each) or Ray actors (default: one per core)",
    )
    group.add_argument(
        "--max-streams",
        type=whole_number(),
        metavar="N",
        help=f"concurrent streams for --provider aws (default {DEFAULT_MAX_STREAMS}, the service's default quota)",
    )
    group.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL_RAY,
        metavar="ADDRESS",
        help="run on a Ray cluster (host:port, or auto); without ADDRESS, on a local Ray instance. "
        "Needs beluga-voice[ray]",
    )


def wants_batch(args: argparse.Namespace) -> bool:
    """Whether the command line names a batch job rather than one recording for stdout."""
    inputs: list[str] = args.input
    if not inputs and not (args.manifest or args.output_dir or args.ray is not None):
        return False  # nothing named at all: the one-recording usage error says what to give
    if len(inputs) != 1 or args.output_dir or args.manifest or args.ray is not None:
        return True
    only = inputs[0]
    return only != "-" and (
        Path(only).is_dir() or is_url(only) or (has_glob(only) and not Path(only).exists())
    )


def single_input(args: argparse.Namespace) -> str:
    """The one input of a one-recording command line."""
    if not args.input:
        raise UsageError(
            "the following arguments are required: PATH|- (or --manifest FILE) "
            "(see `beluga transcribe --help`)"
        )
    only: str = args.input[0]
    return only


def run(args: argparse.Namespace) -> int:
    from beluga_voice.cli.transcribe import check_arguments, provider_options

    _check_batch_arguments(args)
    check_arguments(args)
    options = provider_options(args)
    asyncio.run(_check_provider(args.provider, options))
    inputs = collect_inputs(args.input, args.manifest)
    output_dir = Path(args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"--output-dir {output_dir}: is a file; give a folder")
    job = BatchJob(
        inputs,
        output_dir,
        fmt=args.format,
        provider=args.provider,
        options=options,
        overwrite=args.overwrite,
        workers=args.workers,
        max_streams=args.max_streams or DEFAULT_MAX_STREAMS,
        ray=args.ray is not None,
        ray_address=args.ray or None,
    )
    display = Display()
    try:
        report = run_job(job, on_progress=display.progress, on_failure=display.failure)
    except KeyboardInterrupt:
        display.clear()
        print(
            "beluga: stopped; finished outputs are kept, run the same command again to resume",
            file=sys.stderr,
        )
        raise
    finally:
        display.clear()
    print(f"beluga: {summary(report)}", file=sys.stderr)
    return EXIT_ERROR if report.failed else EXIT_OK


def summary(report: JobReport) -> str:
    """One line: what was done, skipped and failed, how much audio, how fast."""
    parts = [f"{report.done} transcribed"]
    if report.skipped:
        parts.append(f"{report.skipped} skipped (already done)")
    if report.failed:
        parts.append(f"{report.failed} failed (listed in {report.failures_path})")
    text = ", ".join(parts) + f" of {report.total} into {report.output_dir}"
    if report.retries:
        text += f"; {report.retries} stream(s) refused for quota were retried after a backoff"
    if report.done:
        text += (
            f"; {clock(report.audio_seconds)} of audio in {clock(report.elapsed)}"
            f" ({report.speed:.1f}x real time)"
        )
    return text


class Display:
    """Progress on one stderr line (terminals only); each failure as its own line (always)."""

    def __init__(self, min_interval: float = 0.2) -> None:
        self._status = StatusLine(sys.stderr) if is_terminal(sys.stderr) else None
        self._min_interval = min_interval
        self._last = float("-inf")

    def progress(self, progress: JobProgress) -> None:
        now = time.monotonic()
        if self._status is None or now - self._last < self._min_interval:
            return
        self._last = now
        self._status.show(render(progress))

    def failure(self, result: TaskResult) -> None:
        self.clear()
        named = result.error if result.source in result.error else f"{result.source}: {result.error}"
        print(f"beluga: failed: {named}", file=sys.stderr)

    def clear(self) -> None:
        if self._status is not None:
            self._status.clear()


def render(progress: JobProgress) -> str:
    """``12/340 files  0.52 h audio  31x real time  ETA 4:10  1 failed``."""
    finished = progress.done + progress.failed
    text = f"{finished}/{progress.to_run} files  {progress.audio_seconds / 3600:.2f} h audio"
    if progress.done:
        text += f"  {progress.speed:.1f}x real time"
    eta = progress.eta
    if eta is not None and finished < progress.to_run:
        text += f"  ETA {clock(eta)}"
    if progress.failed:
        text += f"  {progress.failed} failed"
    if progress.skipped:
        text += f"  ({progress.skipped} already done)"
    return text


def clock(seconds: float) -> str:
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _check_batch_arguments(args: argparse.Namespace) -> None:
    if args.ray and args.ray != "auto" and ":" not in args.ray:
        hint = (
            "; it is an input: put the inputs before --ray"
            if Path(args.ray).exists() or has_glob(args.ray)
            else ""
        )
        raise UsageError(
            f"--ray {args.ray}: not a cluster address (host:port, ray://host:port or auto){hint}"
        )
    if not args.output_dir:
        raise UsageError(f"{_what(args)} gives one transcript per recording: add --output-dir DIR")
    if "-" in args.input:
        raise UsageError("stdin ('-') is one recording; transcribe it on its own, without --output-dir")
    unsupported = [
        flag
        for flag, value in (
            ("--output", args.output),
            ("--realtime", args.realtime),
            ("--raw", args.raw),
            ("--usage", args.usage),
        )
        if value
    ]
    if unsupported:
        raise UsageError(
            f"{' and '.join(unsupported)} {'do' if len(unsupported) > 1 else 'does'} not apply to "
            "a batch job (--output-dir writes one file per input); drop "
            f"{'them' if len(unsupported) > 1 else 'it'}"
        )
    if args.provider != DEFAULT_PROVIDER and (args.workers or args.ray is not None):
        raise UsageError(
            f"--workers and --ray run the local engine; with --provider {args.provider} the work happens "
            "at the service: use --max-streams N"
        )
    if args.max_streams and args.provider == DEFAULT_PROVIDER:
        raise UsageError("--max-streams caps streams to a remote service; the local engine uses --workers N")


def _what(args: argparse.Namespace) -> str:
    if args.manifest:
        return f"--manifest {args.manifest}"
    if len(args.input) > 1:
        return f"a job of {len(args.input)} inputs"
    only: str = args.input[0]
    return f"{'folder' if Path(only).is_dir() else 'URL' if is_url(only) else 'pattern'} {only}"


async def _check_provider(name: str, options: dict[str, Any]) -> None:
    """Build the provider once here, so a bad option fails now rather than in every worker."""
    provider = create_provider(name, **options)
    await provider.aclose()
