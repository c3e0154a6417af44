"""Opening-handshake tolerance: accept the upgrades real clients send, as the service does.

Some clients repeat ``Sec-WebSocket-Key``, ``Sec-WebSocket-Version``, ``Upgrade`` or ``Origin``;
websockets refuses repeated values, so the first usable one is kept before it looks at them.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, urlsplit

from websockets.datastructures import Headers

STREAM_PATH = "/stream-transcription-websocket"
_SINGLE_VALUED = ("Sec-WebSocket-Version", "Upgrade", "Origin", "Host")


def _is_valid_key(value: str) -> bool:
    try:
        return len(base64.b64decode(value.encode(), validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def normalize_headers(headers: Headers) -> None:
    """Collapse repeated single-valued handshake headers to the first usable value (in place)."""
    keys = headers.get_all("Sec-WebSocket-Key")
    if len(keys) > 1:
        chosen = next((key for key in keys if _is_valid_key(key.strip())), keys[0])
        del headers["Sec-WebSocket-Key"]
        headers["Sec-WebSocket-Key"] = chosen.strip()
    for name in _SINGLE_VALUED:
        values = headers.get_all(name)
        if len(values) > 1:
            del headers[name]
            headers[name] = values[0]


def split_target(target: str) -> tuple[str, list[tuple[str, str]]]:
    """The path and the decoded query parameters (in order, blanks kept) of a request target."""
    parts = urlsplit(target)
    return parts.path, parse_qsl(parts.query, keep_blank_values=True)
