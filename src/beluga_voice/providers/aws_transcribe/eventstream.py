"""The AWS event-stream binary format, sans-I/O: an encoder and an incremental decoder.

Wire layout (all integers big-endian, CRC32 as zlib computes it)::

    [4 total length][4 headers length][4 prelude CRC] [headers] [payload] [4 message CRC]

A header is ``[1 name length][name][1 type][value]``. Used by the client and by ``beluga serve``:
this module is the only codec in the project.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from types import MappingProxyType

from beluga_voice.errors import ProtocolError

PRELUDE_LENGTH = 12
CRC_LENGTH = 4
MIN_MESSAGE_LENGTH = PRELUDE_LENGTH + CRC_LENGTH
MAX_HEADERS_LENGTH = 128 * 1024
DEFAULT_MAX_MESSAGE_LENGTH = 16 * 1024 * 1024

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PRELUDE = struct.Struct(">III")
_U32 = struct.Struct(">I")


class HeaderType(IntEnum):
    """The ten header value types of the format."""

    BOOL_TRUE = 0
    BOOL_FALSE = 1
    BYTE = 2
    SHORT = 3
    INTEGER = 4
    LONG = 5
    BYTE_ARRAY = 6
    STRING = 7
    TIMESTAMP = 8
    UUID = 9


HeaderPyValue = bool | int | bytes | str | datetime | uuid.UUID


@dataclass(frozen=True, slots=True)
class Header:
    """A header value with its explicit wire type (needed for integers of a given width)."""

    type: HeaderType
    value: HeaderPyValue


HeaderInput = HeaderPyValue | Header


class EventStreamError(ProtocolError):
    """Bytes that are not a valid event-stream message."""


class ChecksumMismatch(EventStreamError):
    """A prelude or message CRC does not match: the bytes were corrupted."""


class InvalidLength(EventStreamError):
    """A length field that cannot be right (too small, too large, or inconsistent)."""


class DuplicateHeader(EventStreamError):
    """A header name appears twice in one message."""


class InvalidHeader(EventStreamError):
    """A header with an unknown type, a bad name, or a value that does not fit its type."""


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded event-stream message."""

    headers: Mapping[str, Header]
    payload: bytes

    def get(self, name: str) -> HeaderPyValue | None:
        header = self.headers.get(name)
        return None if header is None else header.value

    def get_str(self, name: str) -> str | None:
        """A header read as text, whatever its wire type (some peers send strings as bytes)."""
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return str(value)

    @property
    def message_type(self) -> str | None:
        return self.get_str(":message-type")

    @property
    def event_type(self) -> str | None:
        return self.get_str(":event-type")

    @property
    def exception_type(self) -> str | None:
        return self.get_str(":exception-type") or self.get_str(":error-code")


# --- encoding -------------------------------------------------------------------------------


def _typed(value: HeaderInput) -> Header:
    if isinstance(value, Header):
        return value
    if isinstance(value, bool):
        return Header(HeaderType.BOOL_TRUE if value else HeaderType.BOOL_FALSE, value)
    if isinstance(value, str):
        return Header(HeaderType.STRING, value)
    if isinstance(value, bytes | bytearray):
        return Header(HeaderType.BYTE_ARRAY, bytes(value))
    if isinstance(value, datetime):
        return Header(HeaderType.TIMESTAMP, value)
    if isinstance(value, uuid.UUID):
        return Header(HeaderType.UUID, value)
    if isinstance(value, int):
        return Header(HeaderType.INTEGER, value)
    raise InvalidHeader(f"cannot encode a header value of type {type(value).__name__}")


def _encode_value(header: Header) -> bytes:
    kind, value = header.type, header.value
    try:
        match kind:
            case HeaderType.BOOL_TRUE | HeaderType.BOOL_FALSE:
                return bytes([kind])
            case HeaderType.BYTE:
                return bytes([kind]) + struct.pack(">b", value)
            case HeaderType.SHORT:
                return bytes([kind]) + struct.pack(">h", value)
            case HeaderType.INTEGER:
                return bytes([kind]) + struct.pack(">i", value)
            case HeaderType.LONG:
                return bytes([kind]) + struct.pack(">q", value)
            case HeaderType.BYTE_ARRAY | HeaderType.STRING:
                raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)  # type: ignore[arg-type]
                return bytes([kind]) + struct.pack(">H", len(raw)) + raw
            case HeaderType.TIMESTAMP:
                millis = value if isinstance(value, int) else _to_millis(value)  # type: ignore[arg-type]
                return bytes([kind]) + struct.pack(">q", millis)
            case HeaderType.UUID:
                raw = value.bytes if isinstance(value, uuid.UUID) else bytes(value)  # type: ignore[arg-type]
                if len(raw) != 16:
                    raise InvalidHeader("a UUID header value must be 16 bytes")
                return bytes([kind]) + raw
    except (struct.error, TypeError, AttributeError) as exc:
        raise InvalidHeader(f"header value {value!r} does not fit type {kind.name}: {exc}") from None
    raise InvalidHeader(f"unknown header type {kind}")


def encode_headers(headers: Mapping[str, HeaderInput]) -> bytes:
    """The headers section; encode constant headers once and reuse it with :func:`encode_prepared`."""
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        if not 1 <= len(raw_name) <= 255:
            raise InvalidHeader(f"header name {name!r} must be 1-255 bytes")
        out += bytes([len(raw_name)]) + raw_name + _encode_value(_typed(value))
    if len(out) > MAX_HEADERS_LENGTH:
        raise InvalidLength(f"headers of {len(out)} bytes exceed {MAX_HEADERS_LENGTH}")
    return bytes(out)


def encode_prepared(headers: bytes, payload: bytes) -> bytes:
    """A whole message from an already encoded headers section (the per-chunk hot path)."""
    total = MIN_MESSAGE_LENGTH + len(headers) + len(payload)
    prelude = _U32.pack(total) + _U32.pack(len(headers))
    prelude += _U32.pack(zlib.crc32(prelude))
    body = prelude + headers + payload
    return body + _U32.pack(zlib.crc32(body))


def encode_message(headers: Mapping[str, HeaderInput], payload: bytes = b"") -> bytes:
    """A whole message from headers (values typed or inferred) and a payload."""
    return encode_prepared(encode_headers(headers), payload)


def _to_millis(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(milliseconds=1)


# --- decoding -------------------------------------------------------------------------------


class EventStreamDecoder:
    """Incremental decoder: feed bytes split anywhere, get whole messages back.

    After an error the stream is unusable (the framing is lost) and every later ``feed`` raises.
    """

    def __init__(self, max_message_length: int = DEFAULT_MAX_MESSAGE_LENGTH) -> None:
        self.max_message_length = max_message_length
        self._buffer = bytearray()
        self._failed: EventStreamError | None = None

    def feed(self, data: bytes) -> list[Message]:
        if self._failed is not None:
            raise self._failed
        messages: list[Message] = []
        try:
            if self._buffer:
                self._buffer += data
                consumed = self._parse_all(self._buffer, messages)
                del self._buffer[:consumed]
            else:  # the usual case, one whole message per frame: parse in place, copy nothing extra
                consumed = self._parse_all(data, messages)
                if consumed < len(data):
                    self._buffer += memoryview(data)[consumed:]
        except EventStreamError as exc:
            self._failed = exc
            self._buffer.clear()
            raise
        return messages

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete message."""
        return len(self._buffer)

    def _parse_all(self, buf: bytes | bytearray, out: list[Message]) -> int:
        position = 0
        while True:
            parsed = _parse_message(buf, position, self.max_message_length)
            if parsed is None:
                return position
            message, position = parsed
            out.append(message)


def _parse_message(buf: bytes | bytearray, start: int, max_length: int) -> tuple[Message, int] | None:
    """The message at ``start`` and where it ends, or ``None`` while it is incomplete."""
    available = len(buf) - start
    if available < PRELUDE_LENGTH:
        return None
    view = memoryview(buf)
    total, headers_length, prelude_crc = _PRELUDE.unpack_from(buf, start)
    if zlib.crc32(view[start : start + 8]) != prelude_crc:
        raise ChecksumMismatch("Prelude checksum mismatch")
    if total < MIN_MESSAGE_LENGTH:
        raise InvalidLength(f"message length {total} is below the minimum of {MIN_MESSAGE_LENGTH}")
    if total > max_length:
        raise InvalidLength(f"message length {total} exceeds the limit of {max_length}")
    if headers_length > MAX_HEADERS_LENGTH or headers_length > total - MIN_MESSAGE_LENGTH:
        raise InvalidLength(f"headers length {headers_length} does not fit a {total}-byte message")
    if available < total:
        return None
    end = start + total
    (message_crc,) = _U32.unpack_from(buf, end - CRC_LENGTH)
    if zlib.crc32(view[start : end - CRC_LENGTH]) != message_crc:
        raise ChecksumMismatch("Message checksum mismatch")
    headers_end = start + PRELUDE_LENGTH + headers_length
    headers = _cached_headers(bytes(buf[start + PRELUDE_LENGTH : headers_end]))
    return Message(headers, bytes(buf[headers_end : end - CRC_LENGTH])), end


# Header sections repeat message after message (AudioEvent, TranscriptEvent): decode each once.
_HEADER_CACHE: dict[bytes, Mapping[str, Header]] = {}
_HEADER_CACHE_LIMIT = 256


def _cached_headers(raw: bytes) -> Mapping[str, Header]:
    headers = _HEADER_CACHE.get(raw)
    if headers is None:
        headers = MappingProxyType(decode_headers(raw))
        if len(_HEADER_CACHE) < _HEADER_CACHE_LIMIT and len(raw) <= 512:
            _HEADER_CACHE[raw] = headers
    return headers


def decode_message(data: bytes) -> Message:
    """Exactly one message from exactly its bytes (one WebSocket frame)."""
    parsed = _parse_message(data, 0, max(len(data), MIN_MESSAGE_LENGTH))
    if parsed is None or parsed[1] != len(data):
        raise InvalidLength(f"expected one whole message in {len(data)} bytes")
    return parsed[0]


def decode_headers(data: bytes) -> dict[str, Header]:
    headers: dict[str, Header] = {}
    pos = 0
    end = len(data)
    try:
        while pos < end:
            name_length = data[pos]
            pos += 1
            if name_length == 0:
                raise InvalidHeader("empty header name")
            name = data[pos : pos + name_length].decode("utf-8")
            pos += name_length
            if pos >= end:
                raise InvalidHeader(f"header {name!r} has no value type")
            kind = data[pos]
            pos += 1
            value, pos = _decode_value(kind, data, pos)
            if pos > end:
                raise InvalidHeader(f"header {name!r} runs past the headers section")
            if name in headers:
                raise DuplicateHeader(f"header {name!r} appears more than once")
            headers[name] = Header(HeaderType(kind), value)
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise InvalidHeader(f"malformed headers section: {exc}") from None
    return headers


def _decode_value(kind: int, data: bytes, pos: int) -> tuple[HeaderPyValue, int]:
    match kind:
        case HeaderType.BOOL_TRUE:
            return True, pos
        case HeaderType.BOOL_FALSE:
            return False, pos
        case HeaderType.BYTE:
            return struct.unpack_from(">b", data, pos)[0], pos + 1
        case HeaderType.SHORT:
            return struct.unpack_from(">h", data, pos)[0], pos + 2
        case HeaderType.INTEGER:
            return struct.unpack_from(">i", data, pos)[0], pos + 4
        case HeaderType.LONG:
            return struct.unpack_from(">q", data, pos)[0], pos + 8
        case HeaderType.BYTE_ARRAY | HeaderType.STRING:
            (length,) = struct.unpack_from(">H", data, pos)
            raw = data[pos + 2 : pos + 2 + length]
            if len(raw) != length:
                raise InvalidHeader("header value runs past the headers section")
            value: HeaderPyValue = raw.decode("utf-8") if kind == HeaderType.STRING else bytes(raw)
            return value, pos + 2 + length
        case HeaderType.TIMESTAMP:
            (millis,) = struct.unpack_from(">q", data, pos)
            return _EPOCH + timedelta(milliseconds=millis), pos + 8
        case HeaderType.UUID:
            raw = data[pos : pos + 16]
            if len(raw) != 16:
                raise InvalidHeader("UUID header value runs past the headers section")
            return uuid.UUID(bytes=bytes(raw)), pos + 16
    raise InvalidHeader(f"unknown header value type {kind}")
