"""Where each transcript goes, and how it gets there without ever leaving half a file.

A transcript is written to a temporary file beside its destination, flushed to disk, then renamed
over the destination (``os.replace``, atomic on POSIX). The rename is the commit: a file under its
final name is always complete, so "the output exists" is exactly "this input is done", and an
interrupted run leaves at most a temporary file that the next run deletes.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from beluga_voice.batch.inputs import BatchInput
from beluga_voice.errors import BelugaError, ConfigurationError
from beluga_voice.stt.serializers import OutputFormat

EXTENSIONS: dict[OutputFormat, str] = {
    "text": ".txt",
    "json": ".json",
    "jsonl": ".jsonl",
    "srt": ".srt",
    "vtt": ".vtt",
    "rttm": ".rttm",
}
FAILURES_NAME = "_failures.jsonl"
TEMP_MARK = ".beluga-part"
"""In the name of every temporary file, so a later run can find and delete leftovers."""


def output_paths(inputs: Sequence[BatchInput], output_dir: Path, fmt: OutputFormat) -> list[Path]:
    """One output per input, mirroring its folders; refuses two inputs that would share one."""
    paths = [output_dir / item.relative.with_suffix(EXTENSIONS[fmt]) for item in inputs]
    owners: dict[Path, str] = {}
    for item, path in zip(inputs, paths, strict=True):
        other = owners.setdefault(path, item.source)
        if other != item.source:
            raise ConfigurationError(
                f"{other} and {item.source} would both be written to {path}; "
                "rename one of them or transcribe them in separate jobs"
            )
    return paths


def is_done(path: Path) -> bool:
    """An output under its final name is complete (only a finished rename puts it there)."""
    return path.is_file()


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` all at once: a temp file in the same folder, fsync, rename."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BelugaError(f"{path.parent}: cannot create the output folder: {exc.strerror or exc}") from exc
    temp = path.with_name(f".{path.name}.{os.getpid()}{TEMP_MARK}")
    try:
        with temp.open("w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except OSError as exc:
        raise BelugaError(f"{path}: cannot write the transcript: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def remove_leftovers(output_dir: Path) -> int:
    """Delete temporary files an interrupted (killed) run left behind; returns how many."""
    if not output_dir.is_dir():
        return 0
    removed = 0
    for temp in output_dir.rglob(f".*{TEMP_MARK}"):
        with contextlib.suppress(OSError):
            temp.unlink()
            removed += 1
    return removed


class FailureLog:
    """``DIR/_failures.jsonl``: this run's failed inputs, one JSON object per line, as they happen.

    Started empty on every run, so it lists what is still failing; removed at the end of a run
    with no failure.
    """

    def __init__(self, output_dir: Path) -> None:
        self.path = output_dir / FAILURES_NAME
        self.count = 0
        output_dir.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", encoding="utf-8")

    def add(self, source: str, code: str, message: str) -> None:
        self.count += 1
        line = {
            "input": source,
            "error": message,
            "code": code,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
        if self.count == 0:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> FailureLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_failures(output_dir: Path) -> list[dict[str, str]]:
    """The failures report of the last run (empty when it had none)."""
    path = output_dir / FAILURES_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
