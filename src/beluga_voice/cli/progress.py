"""A status line on a terminal's stderr: a progress bar for long files, live partial transcripts.

Drawn only when the stream is a terminal; in pipes, logs and CI nothing is written, so stderr keeps
only real messages.
"""

from __future__ import annotations

import shutil
import time
from typing import TextIO

CLEAR_TO_END = "\x1b[K"


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class StatusLine:
    """One line redrawn in place with carriage returns; :meth:`clear` leaves no trace of it."""

    def __init__(self, stream: TextIO, width: int | None = None) -> None:
        self.stream = stream
        self.width = width or shutil.get_terminal_size((80, 24)).columns
        self._shown = False

    def show(self, text: str) -> None:
        line = " ".join(text.split())
        if len(line) >= self.width:
            line = "…" + line[-(self.width - 2) :]  # the newest words matter most
        self.stream.write(f"\r{line}{CLEAR_TO_END}")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write(f"\r{CLEAR_TO_END}")
            self.stream.flush()
            self._shown = False


class ProgressBar:
    """``label [#####-----]  42%  0:12/0:30  ETA 0:08`` over seconds of media, redrawn at most 10x/s."""

    def __init__(
        self, label: str, total_seconds: float, status: StatusLine, min_interval: float = 0.1
    ) -> None:
        self.label = label
        self.total = max(total_seconds, 1e-9)
        self.status = status
        self.min_interval = min_interval
        self._started = time.monotonic()
        self._last_draw = float("-inf")
        self.done = 0.0

    def update(self, done_seconds: float) -> None:
        self.done = min(max(done_seconds, self.done), self.total)
        now = time.monotonic()
        if now - self._last_draw >= self.min_interval:
            self._last_draw = now
            self.status.show(self.render(now - self._started))

    def render(self, elapsed: float) -> str:
        fraction = self.done / self.total
        bar_width = 24
        filled = round(fraction * bar_width)
        text = (
            f"{self.label} [{'#' * filled}{'-' * (bar_width - filled)}] {fraction:4.0%} "
            f"{_clock(self.done)}/{_clock(self.total)}"
        )
        if 0.05 <= fraction < 1.0 and elapsed > 0:
            text += f"  ETA {_clock(elapsed / fraction - elapsed)}"
        return text

    def close(self) -> None:
        self.status.clear()


def _clock(seconds: float) -> str:
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
