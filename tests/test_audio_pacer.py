"""Real-time pacing: recorded audio fed as if live, never faster than the clock allows.

Behaviour tests with generous bounds (the machine is shared); speed measurements live in bench/.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from beluga_voice.audio.chunker import chunk_bytes, iter_chunks
from beluga_voice.audio.pacer import paced
from beluga_voice.errors import ConfigurationError

RATE = 16000
CHUNK_MS = 50
CHUNK = chunk_bytes(RATE, CHUNK_MS)  # 50 ms of 16 kHz mono
N = 12
SECONDS_PER_CHUNK = CHUNK_MS / 1000


async def release_times(chunks: AsyncIterator[bytes], *, slow_first: float = 0.0) -> list[float]:
    started = time.monotonic()
    times = []
    async for _ in chunks:
        times.append(time.monotonic() - started)
        if slow_first and len(times) == 1:
            await asyncio.sleep(slow_first)  # a consumer that stalls once
    return times


async def test_paced_releases_chunks_on_the_media_clock() -> None:
    times = await release_times(paced(iter_chunks(b"\0" * CHUNK * N, CHUNK), RATE))
    assert len(times) == N
    for index, at in enumerate(times):
        # Chunk k starts k * 50 ms into the media: it must never be sent before that moment.
        assert at >= index * SECONDS_PER_CHUNK - 0.005, (index, at)
    assert times[-1] == pytest.approx((N - 1) * SECONDS_PER_CHUNK, abs=0.3)


async def test_paced_speed_factor_plays_faster() -> None:
    times = await release_times(paced(iter_chunks(b"\0" * CHUNK * N, CHUNK), RATE, speed=4.0))
    assert times[-1] >= (N - 1) * SECONDS_PER_CHUNK / 4 - 0.005
    assert times[-1] < (N - 1) * SECONDS_PER_CHUNK / 2, "clearly faster than real time"


async def test_paced_counts_bytes_so_stereo_and_odd_chunks_keep_time() -> None:
    stereo_chunk = chunk_bytes(RATE, CHUNK_MS, 2)
    pieces = [b"\0" * (stereo_chunk // 2), b"\0" * (stereo_chunk * 2), b"\0" * stereo_chunk]
    times = await release_times(paced(pieces, RATE, channels=2))
    # The third piece starts 25 ms + 100 ms = 125 ms into the media.
    assert times[2] >= 0.125 - 0.005
    assert times[2] < 0.125 + 0.3


async def test_a_stalled_consumer_catches_up_instead_of_drifting() -> None:
    times = await release_times(paced(iter_chunks(b"\0" * CHUNK * N, CHUNK), RATE), slow_first=0.5)
    # The schedule is absolute: after a 500 ms stall the backlog goes out at once, and the stream
    # still ends on time (0.55 s) instead of 500 ms late (1.05 s or more if delays accumulated).
    assert times[1] < times[0] + 0.5 + 0.1
    assert times[-1] < (N - 1) * SECONDS_PER_CHUNK + 0.35


async def test_paced_refuses_a_speed_that_is_not_positive() -> None:
    with pytest.raises(ConfigurationError, match="pacing speed must be positive, got 0"):
        async for _ in paced([b"\0\0"], RATE, speed=0):
            pass


async def test_joined_bursts_keep_every_byte_and_never_leave_early() -> None:
    audio = bytes(range(256)) * (CHUNK * N // 256)
    started = time.monotonic()
    pieces: list[tuple[float, bytes]] = []
    async for piece in paced(iter_chunks(audio, CHUNK), RATE, tick=0.2, join_up_to=4 * CHUNK):
        pieces.append((time.monotonic() - started, piece))
    assert b"".join(piece for _, piece in pieces) == audio, "the same bytes, in order"
    assert all(len(piece) <= 4 * CHUNK for _, piece in pieces)
    # A 0.2 s tick releases four 50 ms chunks at a time: one message each instead of four.
    assert len(pieces) < N / 2
    offset = 0
    for at, piece in pieces:
        assert at >= offset / (RATE * 2) - 0.005, "no byte leaves before its media time"
        offset += len(piece)
