"""Uniform chunks: services want steady pieces of the configured size, whatever the input's pieces."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beluga_voice.audio.chunker import (
    DEFAULT_CHUNK_MS,
    MAX_CHUNK_MS,
    MIN_CHUNK_MS,
    Chunker,
    chunk_bytes,
    iter_chunks,
    rechunk,
)
from beluga_voice.errors import ConfigurationError


def test_chunk_bytes_for_common_formats() -> None:
    assert DEFAULT_CHUNK_MS == 100
    assert chunk_bytes(16000) == 3200  # 1600 frames of 2 bytes
    assert chunk_bytes(8000, 50) == 800
    assert chunk_bytes(44100, 100, 2) == 4410 * 4
    assert chunk_bytes(48000, 200) == 19200


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 32000, 44100, 48000])
@pytest.mark.parametrize("ms", [MIN_CHUNK_MS, 75, DEFAULT_CHUNK_MS, 130, MAX_CHUNK_MS])
@pytest.mark.parametrize("channels", [1, 2])
def test_chunks_are_whole_frames_and_never_over_a_second(rate: int, ms: int, channels: int) -> None:
    size = chunk_bytes(rate, ms, channels)
    frame = 2 * channels
    assert size % frame == 0
    assert size // frame <= rate, "no chunk holds more than 1 s of audio"
    assert abs(size // frame - rate * ms / 1000) < 1


@pytest.mark.parametrize("ms", [0, 20, 49, 201, 1000])
def test_chunk_durations_outside_50_to_200_ms_are_refused(ms: int) -> None:
    with pytest.raises(ConfigurationError, match=rf"chunk duration {ms} ms is outside 50-200 ms"):
        chunk_bytes(16000, ms)


def test_chunker_recuts_odd_pieces_into_exact_chunks_and_flushes_the_rest() -> None:
    data = bytes(range(256)) * 40  # 10240 bytes, every byte position recognisable
    chunker = Chunker(3200)
    out: list[bytes] = []
    offset = 0
    for size in [1, 3, 3199, 0, 7, 5000, 33, 1997]:
        out += chunker.feed(data[offset : offset + size])
        offset += size
    assert offset == 10240
    assert [len(c) for c in out] == [3200, 3200, 3200]
    assert chunker.pending == 640
    rest = chunker.flush()
    assert len(rest) == 640 and chunker.pending == 0
    assert b"".join(out) + rest == data, "order and content kept"
    assert chunker.flush() == b""


@given(st.lists(st.integers(min_value=0, max_value=9000), max_size=40), st.sampled_from([800, 3200, 17640]))
def test_chunker_property_every_chunk_is_exact_and_nothing_is_lost(pieces: list[int], size: int) -> None:
    data = bytes(i % 251 for i in range(sum(pieces)))
    chunker = Chunker(size)
    out: list[bytes] = []
    offset = 0
    for piece in pieces:
        out += chunker.feed(data[offset : offset + piece])
        offset += piece
    assert all(len(c) == size for c in out)
    rest = chunker.flush()
    assert len(rest) < size
    assert b"".join(out) + rest == data


def test_chunker_refuses_a_size_that_cannot_make_progress() -> None:
    with pytest.raises(ConfigurationError, match="chunk size must be positive, got 0"):
        Chunker(0)


def test_iter_chunks_cuts_a_buffer_with_a_short_tail() -> None:
    assert [len(c) for c in iter_chunks(b"x" * 7000, 3200)] == [3200, 3200, 600]
    assert list(iter_chunks(b"", 3200)) == []


async def test_rechunk_accepts_async_and_plain_sources() -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for n in (100, 5000, 1, 1299):
            yield b"a" * n

    from_async = [c async for c in rechunk(pieces(), 3200)]
    from_list = [c async for c in rechunk([b"a" * 6400, b"a" * 10], 3200)]
    assert [len(c) for c in from_async] == [3200, 3200]
    assert [len(c) for c in from_list] == [3200, 3200, 10]
