"""The audio path between the application and the provider.

A bounded queue (backpressure, not unbounded memory), the session's media clock (which wall-clock
moment each stretch of audio arrived, for latency figures) and keep-alive silence for stalled live
sources. What a restarted stream must hear again is the shared :class:`StreamTimeline`'s business:
every piece handed to the provider is reported to it.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence

from beluga_voice.audio.pcm import PCM_SAMPLE_WIDTH
from beluga_voice.session.state import SessionStateError


class AudioFeed:
    def __init__(
        self,
        *,
        sample_rate: int,
        channels: int,
        max_pieces: int,
        keep_alive_after: float | None,
        clock: Callable[[], float],
    ) -> None:
        self.frame_bytes = PCM_SAMPLE_WIDTH * channels
        self.bytes_per_second = sample_rate * self.frame_bytes
        self._max_pieces = max_pieces
        self._keep_alive_after = keep_alive_after
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

    def open_stream(self, replay: Sequence[bytes], handed: Callable[[bytes], None]) -> AsyncIterator[bytes]:
        """Audio for a new provider stream: ``replay`` first (audio a failed stream left without
        finals), then the queue; ``handed`` hears of every new piece (keep-alive silence included)."""
        self._generation += 1
        return self._stream(self._generation, replay, handed)

    async def _stream(
        self, generation: int, replay: Sequence[bytes], handed: Callable[[bytes], None]
    ) -> AsyncIterator[bytes]:
        for piece in replay:
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
            handed(data)
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
