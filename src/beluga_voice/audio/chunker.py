"""Uniform audio chunks: streaming services want steady 50-200 ms pieces, never over 1 s."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

from beluga_voice.aio import as_async_iter
from beluga_voice.audio.pcm import PCM_SAMPLE_WIDTH
from beluga_voice.errors import ConfigurationError

DEFAULT_CHUNK_MS = 100
MIN_CHUNK_MS = 50
MAX_CHUNK_MS = 200


def chunk_bytes(sample_rate: int, chunk_ms: int = DEFAULT_CHUNK_MS, channels: int = 1) -> int:
    """Bytes of s16le PCM in one chunk of ``chunk_ms`` milliseconds."""
    if not MIN_CHUNK_MS <= chunk_ms <= MAX_CHUNK_MS:
        raise ConfigurationError(
            f"chunk duration {chunk_ms} ms is outside {MIN_CHUNK_MS}-{MAX_CHUNK_MS} ms; "
            f"use the default {DEFAULT_CHUNK_MS} ms."
        )
    frames = sample_rate * chunk_ms // 1000
    return frames * PCM_SAMPLE_WIDTH * channels


class Chunker:
    """Re-cuts a byte stream of any piece sizes into chunks of exactly ``size`` bytes.

    Sans-I/O: ``feed`` returns the complete chunks, ``flush`` the remainder (shorter, frame aligned).
    """

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ConfigurationError(f"chunk size must be positive, got {size}")
        self.size = size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        full = len(self._buffer) - len(self._buffer) % self.size
        if not full:
            return []
        view = bytes(self._buffer[:full])
        del self._buffer[:full]
        return [view[i : i + self.size] for i in range(0, full, self.size)]

    def flush(self) -> bytes:
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    @property
    def pending(self) -> int:
        return len(self._buffer)


def iter_chunks(data: bytes, size: int) -> Iterator[bytes]:
    """Uniform chunks of a whole buffer; the last one may be shorter."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def rechunk(source: AsyncIterable[bytes] | Iterable[bytes], size: int) -> AsyncIterator[bytes]:
    """Uniform chunks from an async (or plain) iterable of byte pieces of any size."""
    chunker = Chunker(size)
    async for piece in as_async_iter(source):
        for chunk in chunker.feed(piece):
            yield chunk
    rest = chunker.flush()
    if rest:
        yield rest
