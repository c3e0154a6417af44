"""The audio path between the application and the provider.

A bounded queue (backpressure, not unbounded memory), the session's media clock (which wall-clock
moment each stretch of audio arrived, for latency figures), keep-alive silence for stalled live
sources, and the tail of audio not yet covered by final results, replayed if the stream restarts.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import AsyncIterator, Callable

from beluga_voice.audio.chunker import iter_chunks
from beluga_voice.audio.pcm import PCM_SAMPLE_WIDTH
from beluga_voice.session.state import SessionStateError

_REPLAY_PIECE_SECONDS = 1


class AudioFeed:
    def __init__(
        self,
        *,
        sample_rate: int,
        channels: int,
        max_pieces: int,
        keep_alive_after: float | None,
        replay_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.frame_bytes = PCM_SAMPLE_WIDTH * channels
        self.bytes_per_second = sample_rate * self.frame_bytes
        self._max_pieces = max_pieces
        self._keep_alive_after = keep_alive_after
        self._max_tail = int(replay_seconds * sample_rate) * self.frame_bytes
        self._clock = clock
        self._items: deque[tuple[bytes, float] | None] = deque()
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = False
        self._aborted: BaseException | None = None
        self._ended = False
        self._generation = 0
        self.handed = 0
        """Bytes handed to the provider so far (the session's media clock, replays not counted)."""
        self._first_wall: float | None = None
        self._tail = bytearray()
        self._tail_start = 0
        self._ends: list[int] = []
        self._walls: list[float] = []
        self._first_entry = 0

    @property
    def media_position(self) -> float:
        """Seconds of audio handed to the provider so far."""
        return self.handed / self.bytes_per_second

    # -- application side -------------------------------------------------------------------------

    async def put(self, data: bytes) -> None:
        """Queue audio, waiting while the provider is ``max_pieces`` behind."""
        while True:
            self._check_open()
            if len(self._items) < self._max_pieces:
                break
            self._writable.clear()
            await self._writable.wait()
        self._items.append((data, self._clock()))
        self._readable.set()

    def end(self) -> None:
        """No more audio: the provider's stream ends after what is queued."""
        if not self._closed:
            self._closed = True
            self._items.append(None)
            self._readable.set()

    def abort(self, error: BaseException) -> None:
        """The stream failed for good: drop queued audio and release waiting writers."""
        self._aborted = error
        self._closed = True
        self._items.clear()
        self._items.append(None)
        self._readable.set()
        self._writable.set()

    def _check_open(self) -> None:
        if self._aborted is not None:
            raise SessionStateError(
                f"the session ended because its transcription stream failed ({self._aborted}); "
                "no more audio is accepted. Start a new session."
            ) from self._aborted
        if self._closed:
            raise SessionStateError("the session is stopping or stopped; no more audio is accepted.")

    # -- provider side ----------------------------------------------------------------------------

    def open_stream(self) -> tuple[float, AsyncIterator[bytes]]:
        """Audio for a new provider stream and the media time at which it begins.

        The first stream starts at 0. A restarted stream first gets the replay tail: the audio since
        the last final result, so words cut by the failure are transcribed again.
        """
        self._generation += 1
        offset = self._tail_start / self.bytes_per_second
        return offset, self._stream(self._generation, bytes(self._tail))

    async def _stream(self, generation: int, replay: bytes) -> AsyncIterator[bytes]:
        replay_piece = self.bytes_per_second * _REPLAY_PIECE_SECONDS
        for piece in iter_chunks(replay, replay_piece):
            yield piece
        while not self._ended:
            item = await self._next(generation)
            if generation != self._generation:
                return
            if item is None:
                self._ended = True
                return
            data, received_at = item
            self._record(data, received_at)
            yield data

    async def _next(self, generation: int) -> tuple[bytes, float] | None:
        """The next queued piece (or keep-alive silence); ``None`` at the end or when superseded.

        A superseded stream (its provider failed) never takes a piece, so none is lost."""
        while not self._items or generation != self._generation:
            if generation != self._generation:
                return None
            self._readable.clear()
            wait = self._keep_alive_wait()
            if wait is None:
                await self._readable.wait()
                continue
            try:
                await asyncio.wait_for(self._readable.wait(), wait)
            except TimeoutError:
                silence = self._keep_alive_silence()
                if silence:
                    return silence, self._clock()
        item = self._items.popleft()
        if len(self._items) < self._max_pieces:
            self._writable.set()
        return item

    def _keep_alive_wait(self) -> float | None:
        """Seconds until a stalled live source needs silence (``None``: no keep-alive now)."""
        if self._keep_alive_after is None or self._first_wall is None or self._closed:
            return None
        lag = self._lag(self._first_wall)
        return max(0.0, self._keep_alive_after - lag) + 0.01

    def _lag(self, first_wall: float) -> float:
        """How far the wall clock has run ahead of the audio received."""
        return (self._clock() - first_wall) - self.media_position

    def _keep_alive_silence(self) -> bytes:
        """Silence covering the gap between the wall clock and the audio received."""
        if self._keep_alive_after is None or self._first_wall is None or self._closed:
            return b""
        lag = self._lag(self._first_wall)
        if lag < self._keep_alive_after:
            return b""
        frames = int(lag * self.bytes_per_second) // self.frame_bytes
        return bytes(frames * self.frame_bytes)

    def _record(self, data: bytes, received_at: float) -> None:
        if self._first_wall is None:
            self._first_wall = received_at
        self.handed += len(data)
        self._ends.append(self.handed)
        self._walls.append(received_at)
        self._tail += data
        excess = len(self._tail) - self._max_tail
        if excess > 0:
            excess += -excess % self.frame_bytes
            del self._tail[:excess]
            self._tail_start += excess

    # -- the media clock --------------------------------------------------------------------------

    def wall_at(self, media_time: float) -> float | None:
        """When the audio at ``media_time`` reached the session (monotonic clock), if still known."""
        position = int(media_time * self.bytes_per_second)
        index = bisect.bisect_left(self._ends, position, lo=self._first_entry)
        if index >= len(self._ends):
            return self._walls[-1] if self._walls else None
        return self._walls[index]

    def forget_before(self, media_time: float) -> None:
        """Drop clock entries that no later question can need."""
        position = int(media_time * self.bytes_per_second)
        self._first_entry = max(
            self._first_entry, bisect.bisect_left(self._ends, position, lo=self._first_entry)
        )
        if self._first_entry > 4096:
            del self._ends[: self._first_entry]
            del self._walls[: self._first_entry]
            self._first_entry = 0

    def finalized_until(self, media_time: float) -> None:
        """Audio before ``media_time`` has final results: it never needs a replay."""
        cut = int(media_time * self.bytes_per_second)
        cut -= cut % self.frame_bytes
        cut = min(cut, self.handed)
        if cut > self._tail_start:
            del self._tail[: cut - self._tail_start]
            self._tail_start = cut
