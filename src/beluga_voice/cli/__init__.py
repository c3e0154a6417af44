"""The ``beluga`` command line (console script ``beluga_voice.cli.main:main``).

Shared by every command module: the exit codes and :class:`UsageError`.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
"""A runtime failure: unreadable audio, a service or connection error."""
EXIT_USAGE = 2
"""The command line (or the configuration it names) cannot work as given."""
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command line that cannot work as given; ``main`` prints it as one line and exits 2."""


__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "UsageError"]
