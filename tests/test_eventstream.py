"""The event-stream codec against AWS's official vectors, botocore's decoder, and random messages."""

from __future__ import annotations

import base64
import json
import struct
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.eventstream import EventStreamBuffer
from hypothesis import given, settings
from hypothesis import strategies as st

from beluga_voice.providers.aws_transcribe.eventstream import (
    ChecksumMismatch,
    DuplicateHeader,
    EventStreamDecoder,
    EventStreamError,
    Header,
    HeaderType,
    InvalidHeader,
    InvalidLength,
    Message,
    decode_message,
    encode_message,
)

VECTORS = "conformance/eventstream"


def _vector_names(shared: Path, kind: str) -> list[str]:
    return sorted(p.name for p in (shared / VECTORS / "encoded" / kind).iterdir())


def _decoded_headers(spec: dict[str, Any]) -> dict[str, Header]:
    headers: dict[str, Header] = {}
    for item in spec["headers"]:
        kind = HeaderType(item["type"])
        value = item["value"]
        if kind in (HeaderType.STRING,):
            value = base64.b64decode(value).decode("utf-8")
        elif kind in (HeaderType.BYTE_ARRAY, HeaderType.UUID):
            value = base64.b64decode(value)
        headers[item["name"]] = Header(kind, value)
    return headers


def _comparable(header: Header) -> tuple[int, object]:
    """A header value in one form whatever the decoder's Python type (ms for times, bytes for UUIDs)."""
    value = header.value
    if isinstance(value, datetime):
        value = (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    if isinstance(value, uuid.UUID):
        value = value.bytes
    return int(header.type), value


def test_every_positive_vector_encodes_byte_for_byte_and_decodes(shared_dir: Path) -> None:
    names = _vector_names(shared_dir, "positive")
    assert "all_headers" in names, "the vector set lost its all-types case"
    for name in names:
        raw = (shared_dir / VECTORS / "encoded" / "positive" / name).read_bytes()
        spec = json.loads((shared_dir / VECTORS / "decoded" / "positive" / name).read_text())
        headers = _decoded_headers(spec)
        payload = base64.b64decode(spec["payload"])

        assert encode_message(headers, payload) == raw, name

        message = decode_message(raw)
        assert message.payload == payload, name
        assert [(n, _comparable(h)) for n, h in message.headers.items()] == [
            (n, _comparable(h)) for n, h in headers.items()
        ], name
        total, headers_length, prelude_crc = struct.unpack(">III", raw[:12])
        assert (total, headers_length) == (spec["total_length"], spec["headers_length"])
        assert prelude_crc == spec["prelude_crc"] % 2**32
        assert struct.unpack(">I", raw[-4:])[0] == spec["message_crc"] % 2**32


def test_all_ten_header_types_are_covered_by_the_vectors(shared_dir: Path) -> None:
    raw = (shared_dir / VECTORS / "encoded" / "positive" / "all_headers").read_bytes()
    types = {h.type for h in decode_message(raw).headers.values()}
    assert types == set(HeaderType)


def test_every_negative_vector_is_rejected_with_the_named_error(shared_dir: Path) -> None:
    names = _vector_names(shared_dir, "negative")
    assert names
    for name in names:
        raw = (shared_dir / VECTORS / "encoded" / "negative" / name).read_bytes()
        expected = (shared_dir / VECTORS / "decoded" / "negative" / name).read_text().strip()
        with pytest.raises(ChecksumMismatch) as caught:
            EventStreamDecoder().feed(raw)
        assert str(caught.value) == expected, name


def test_the_decoder_accepts_bytes_split_at_every_position(shared_dir: Path) -> None:
    stream = b"".join(
        (shared_dir / VECTORS / "encoded" / "positive" / n).read_bytes()
        for n in _vector_names(shared_dir, "positive")
    )
    whole = EventStreamDecoder().feed(stream)
    for cut in range(len(stream) + 1):
        decoder = EventStreamDecoder()
        parts = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert parts == whole
        assert decoder.pending == 0


def test_the_decoder_accepts_one_byte_at_a_time() -> None:
    messages = [encode_message({":event-type": "AudioEvent"}, bytes(range(200))) for _ in range(3)]
    decoder = EventStreamDecoder()
    out: list[Message] = []
    for byte in b"".join(messages):
        out += decoder.feed(bytes([byte]))
    assert [m.payload for m in out] == [bytes(range(200))] * 3


def _frame(headers: bytes, payload: bytes = b"", *, total: int | None = None) -> bytes:
    length = total if total is not None else 16 + len(headers) + len(payload)
    prelude = struct.pack(">II", length, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def test_structural_errors_have_their_own_types() -> None:
    with pytest.raises(InvalidLength):
        EventStreamDecoder().feed(_frame(b"", total=8))
    with pytest.raises(InvalidLength):
        EventStreamDecoder(max_message_length=1024).feed(_frame(b"", b"x" * 2000))
    duplicate = b"\x01a\x00" * 2
    with pytest.raises(DuplicateHeader):
        EventStreamDecoder().feed(_frame(duplicate))
    with pytest.raises(InvalidHeader):
        EventStreamDecoder().feed(_frame(b"\x01a\x0c"))  # type 12 does not exist
    with pytest.raises(InvalidHeader):
        EventStreamDecoder().feed(_frame(b"\x01a\x07\x00\x09ab"))  # string longer than the section


def test_a_failed_decoder_stays_failed_rather_than_resynchronising_on_garbage() -> None:
    decoder = EventStreamDecoder()
    bad = bytearray(encode_message({"a": "b"}, b"payload"))
    bad[-6] ^= 0xFF
    with pytest.raises(ChecksumMismatch):
        decoder.feed(bytes(bad))
    with pytest.raises(EventStreamError):
        decoder.feed(encode_message({"a": "b"}))


# --- property tests -------------------------------------------------------------------------------

_names = st.text(min_size=1, max_size=20).filter(lambda s: 1 <= len(s.encode()) <= 255)
_values = st.one_of(
    st.booleans().map(lambda b: Header(HeaderType.BOOL_TRUE if b else HeaderType.BOOL_FALSE, b)),
    st.integers(-(2**7), 2**7 - 1).map(lambda v: Header(HeaderType.BYTE, v)),
    st.integers(-(2**15), 2**15 - 1).map(lambda v: Header(HeaderType.SHORT, v)),
    st.integers(-(2**31), 2**31 - 1).map(lambda v: Header(HeaderType.INTEGER, v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: Header(HeaderType.LONG, v)),
    st.binary(max_size=300).map(lambda v: Header(HeaderType.BYTE_ARRAY, v)),
    st.text(max_size=100).map(lambda v: Header(HeaderType.STRING, v)),
    st.integers(0, 2**41).map(lambda v: Header(HeaderType.TIMESTAMP, v)),
    st.uuids().map(lambda v: Header(HeaderType.UUID, v)),
)
_headers = st.dictionaries(_names, _values, max_size=8)
_payloads = st.binary(max_size=2000)


def _botocore_form(value: object) -> object:
    """botocore leaves UUIDs as 16 bytes and timestamps as integer milliseconds."""
    if isinstance(value, uuid.UUID):
        return value.bytes
    if isinstance(value, datetime):
        return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    return value


@settings(max_examples=150, deadline=None)
@given(headers=_headers, payload=_payloads)
def test_random_messages_round_trip(headers: dict[str, Header], payload: bytes) -> None:
    encoded = encode_message(headers, payload)
    message = decode_message(encoded)
    assert message.payload == payload
    assert {n: _comparable(h) for n, h in message.headers.items()} == {
        n: _comparable(h) for n, h in headers.items()
    }


@settings(max_examples=150, deadline=None)
@given(headers=_headers, payload=_payloads)
def test_botocore_decodes_what_we_encode_and_agrees_with_our_decoder(
    headers: dict[str, Header], payload: bytes
) -> None:
    encoded = encode_message(headers, payload)
    buffer = EventStreamBuffer()
    buffer.add_data(encoded)
    decoded: list[Any] = list(buffer)  # the stubs type the iteration loosely
    (theirs,) = decoded
    ours = decode_message(encoded)
    assert theirs.payload == ours.payload == payload
    assert theirs.prelude.crc == struct.unpack(">I", encoded[8:12])[0]
    assert dict(theirs.headers) == {n: _botocore_form(h.value) for n, h in ours.headers.items()}


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(st.tuples(_headers, _payloads), min_size=1, max_size=4),
    cuts=st.lists(st.integers(0, 20000), max_size=6),
)
def test_several_messages_split_anywhere_decode_the_same(
    messages: list[tuple[dict[str, Header], bytes]], cuts: list[int]
) -> None:
    stream = b"".join(encode_message(h, p) for h, p in messages)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    decoder = EventStreamDecoder()
    out: list[Message] = []
    start = 0
    for point in [*points, len(stream)]:
        out += decoder.feed(stream[start:point])
        start = point
    assert [m.payload for m in out] == [p for _, p in messages]
    assert decoder.pending == 0


@settings(max_examples=100, deadline=None)
@given(headers=_headers, payload=_payloads, position=st.integers(0, 10**6), flip=st.integers(1, 255))
def test_any_corrupted_byte_is_detected(
    headers: dict[str, Header], payload: bytes, position: int, flip: int
) -> None:
    encoded = bytearray(encode_message(headers, payload))
    encoded[position % len(encoded)] ^= flip
    decoder = EventStreamDecoder()
    try:
        decoded = decoder.feed(bytes(encoded))
    except EventStreamError:
        return
    # A corrupted length can only make the decoder wait for more bytes; it never yields a message.
    assert decoded == []
