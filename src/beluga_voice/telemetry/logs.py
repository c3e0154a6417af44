"""Logging set-up for operators: plain or JSON lines, with secrets scrubbed from every record.

``configure_logging(json=True)`` is what ``beluga serve --log-json`` (and any application) calls.
The redaction filter sits on the handler, so it also covers records from other libraries
(websockets, botocore) that propagate to it.
"""

from __future__ import annotations

import json as _json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from beluga_voice.telemetry.redact import redact

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is structured data.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)

HANDLER_NAME = "beluga-voice"


class RedactingFilter(logging.Filter):
    """Masks access keys, secret keys, session tokens and signatures in messages, extras and tracebacks.

    It rewrites the record in place (message merged with its arguments), so every handler after it
    sees the scrubbed text. It never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, _scrub(value))
        return True


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(repr(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the record's extras, and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return _json.dumps(entry, default=str, ensure_ascii=False)


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record, not at set-up.

    So a handler installed once keeps working when stderr is swapped later (test capture, a
    redirected console), and never writes to a stream that has since been closed.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def configure_logging(
    *,
    json: bool = False,
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
    fmt: str = PLAIN_FORMAT,
) -> logging.Handler:
    """Send logs to ``stream`` (stderr by default) as JSON lines or plain text, secrets redacted.

    ``fmt`` is the ``logging`` format of plain lines. Replaces a handler installed by an earlier call
    rather than adding a second one, so no line is printed twice; other handlers of the root logger
    are left alone.
    """
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.set_name(HANDLER_NAME)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(fmt))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
