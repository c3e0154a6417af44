"""The ``beluga`` command line (console script ``beluga_voice.cli.main:main``).

Shared by every command module: the exit codes, :class:`UsageError` and the whole-number options.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

EXIT_OK = 0
EXIT_ERROR = 1
"""A runtime failure: unreadable audio, a service or connection error."""
EXIT_USAGE = 2
"""The command line (or the configuration it names) cannot work as given."""
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command line that cannot work as given; ``main`` prints it as one line and exits 2."""


def whole_number(low: int = 1, high: int | None = None, unit: str = "") -> Callable[[str], int]:
    """An argparse ``type`` for a whole number from ``low`` (to ``high``), named in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if high is None and value < low:
            raise argparse.ArgumentTypeError(f"{value} must be at least {low}")
        if high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}-{high} {unit}".rstrip())
        return value

    return parse


__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "UsageError", "whole_number"]
