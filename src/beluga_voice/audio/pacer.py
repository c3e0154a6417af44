"""Feeding recorded audio as if it were live: chunks released on a wall-clock schedule."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable

from beluga_voice.aio import as_async_iter
from beluga_voice.audio.pcm import PCM_SAMPLE_WIDTH
from beluga_voice.errors import ConfigurationError


async def paced(
    chunks: AsyncIterable[bytes] | Iterable[bytes],
    sample_rate: int,
    channels: int = 1,
    speed: float = 1.0,
) -> AsyncIterator[bytes]:
    """Yield each chunk no earlier than its media time divided by ``speed``.

    The schedule is absolute (from the first chunk), so sleep jitter never accumulates.
    """
    if speed <= 0:
        raise ConfigurationError(f"pacing speed must be positive, got {speed}")
    bytes_per_second = sample_rate * channels * PCM_SAMPLE_WIDTH * speed
    started = time.monotonic()
    sent = 0
    async for chunk in as_async_iter(chunks):
        delay = started + sent / bytes_per_second - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        yield chunk
        sent += len(chunk)
