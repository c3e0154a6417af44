"""``beluga``: argparse front, one line per error, exit codes 0 (ok), 1 (runtime error), 2 (usage)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from beluga_voice import __version__
from beluga_voice.cli import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError
from beluga_voice.errors import BelugaError, ConfigurationError
from beluga_voice.telemetry import configure_logging, redact

# The subcommands, in help order. Adding one: write ``beluga_voice/cli/<name>.py`` with
#     def add_parser(subparsers) -> None:
#         parser = subparsers.add_parser("<name>", help="...", description="...")
#         ...options...
#         parser.set_defaults(func=run)      # run(args: argparse.Namespace) -> int (an exit code)
# then append "<name>" here. Raise UsageError (exit 2) for a command line that cannot work and a
# BelugaError (exit 1) for runtime failures; main() prints either as one line. Every subcommand
# gets --debug automatically.
COMMANDS: tuple[str, ...] = ("transcribe", "listen", "serve", "doctor")

PROG = "beluga"


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (via :class:`UsageError`) instead of exiting."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


class CommandParser(ArgumentParser):
    """The parser of one subcommand: also accepts ``--debug`` after the command name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # SUPPRESS keeps the top-level value when the flag is not repeated here.
        self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Real-time speech-to-text for voice agents: the embedded offline engine, "
        "Amazon Transcribe Streaming, and a local Transcribe-compatible server.",
        epilog="Run `beluga COMMAND --help` for a command's options. Docs: docs/cli.md",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--debug", action="store_true", help="show debug logs and full tracebacks on errors")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands", parser_class=CommandParser
    )
    for name in COMMANDS:
        importlib.import_module(f"beluga_voice.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``beluga`` with ``argv`` (default: the process arguments) and return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except SystemExit as exc:  # --help and --version print and exit 0
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    debug: bool = args.debug
    _configure_logging(debug)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code: int = func(args)
        return code
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE, debug)
    except ConfigurationError as exc:
        return _fail(exc.message, EXIT_USAGE, debug)
    except BelugaError as exc:
        return _fail(exc.message, EXIT_ERROR, debug)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`beluga ... | head`): not worth a message, and stdout is unusable.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as exc:
        return _fail(
            f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback, and please "
            "report it)",
            EXIT_ERROR,
            debug,
        )


def _fail(message: str, code: int, debug: bool = False) -> int:
    if debug:
        print(redact(traceback.format_exc()), end="", file=sys.stderr)
    print(f"{PROG}: error: {redact(' '.join(message.split()))}", file=sys.stderr)
    return code


def _configure_logging(debug: bool) -> None:
    # One handler, with the redacting filter: botocore's debug lines carry the canonical request and
    # the signature. configure_logging replaces its own handler, so no line is printed twice.
    configure_logging(
        level=logging.DEBUG if debug else logging.WARNING,
        fmt="%(asctime)s %(levelname)s %(name)s: %(message)s"
        if debug
        else f"{PROG}: %(levelname)s: %(message)s",
    )


if __name__ == "__main__":
    sys.exit(main())
