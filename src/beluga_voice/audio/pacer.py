"""Feeding recorded audio as if it were live: chunks released on a wall-clock schedule.

Every paced stream of an event loop shares one clock (:class:`PaceClock`): release times are
rounded up to a grid of ``TICK`` seconds and one timer wakes every stream due on a tick. A hundred
streams at real time then cost the loop at most ``1 / TICK`` wake-ups a second instead of one per
chunk per stream. Rounding is always up, so no chunk ever leaves before its media time.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Iterable

from beluga_voice.audio.pcm import PCM_SAMPLE_WIDTH
from beluga_voice.errors import ConfigurationError

TICK = 0.02
"""Default resolution of the shared clock (s): release times are rounded up to it. A coarser tick
(``paced(..., tick=0.2)``) means fewer wake-ups: chunks then leave in small bursts, never early."""

CATCH_UP_BURST = 10
"""Chunks of in-memory audio released back to back (already due) before yielding to the loop."""


class PaceClock:
    """One timer for all the paced streams of an event loop: waiters grouped by tick."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tick: float = TICK) -> None:
        if tick <= 0:
            raise ConfigurationError(f"pacing tick must be positive, got {tick}")
        self._loop = loop
        self._tick = tick
        self._waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._ticks: list[int] = []  # heap of ticks with waiters
        self._timer: asyncio.TimerHandle | None = None
        self._timer_tick: int | None = None

    def wait_until(self, deadline: float) -> asyncio.Future[None]:
        """A future resolved on the first tick at or after ``deadline`` (``loop.time()`` seconds)."""
        tick = math.ceil(deadline / self._tick)
        future: asyncio.Future[None] = self._loop.create_future()
        waiters = self._waiters.get(tick)
        if waiters is not None:
            waiters.append(future)
            return future
        self._waiters[tick] = [future]
        heapq.heappush(self._ticks, tick)
        if self._timer_tick is None or tick < self._timer_tick:
            self._arm(tick)
        return future

    def _arm(self, tick: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_tick = tick
        self._timer = self._loop.call_at(tick * self._tick, self._fire)

    def _fire(self) -> None:
        self._timer = self._timer_tick = None
        now = self._loop.time()
        ticks = self._ticks
        while ticks and ticks[0] * self._tick <= now:
            for future in self._waiters.pop(heapq.heappop(ticks)):
                if not future.done():  # a cancelled consumer leaves its future behind
                    future.set_result(None)
        if ticks:
            self._arm(ticks[0])


_clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, PaceClock]] = (
    weakref.WeakKeyDictionary()
)


def pace_clock(tick: float = TICK) -> PaceClock:
    """The running loop's shared clock of resolution ``tick``."""
    loop = asyncio.get_running_loop()
    clocks = _clocks.setdefault(loop, {})
    clock = clocks.get(tick)
    if clock is None:
        clock = clocks[tick] = PaceClock(loop, tick)
    return clock


async def paced(
    chunks: AsyncIterable[bytes] | Iterable[bytes],
    sample_rate: int,
    channels: int = 1,
    speed: float = 1.0,
    *,
    tick: float = TICK,
    join_up_to: int = 0,
) -> AsyncIterator[bytes]:
    """Yield each chunk no earlier than its media time divided by ``speed``.

    The schedule is absolute (from the first chunk), so sleep jitter never accumulates; a chunk
    that is already due (live audio, or a consumer that fell behind) is yielded at once. ``tick``:
    the shared clock's resolution; each chunk leaves on the first tick at or after its time.
    ``join_up_to`` (bytes; in-memory audio only): chunks of one burst (all due by the same wake-up)
    leave joined as one piece of at most that size, so a sender writes one message per tick
    instead of one per chunk. Nothing leaves earlier or later for it; an async source is never
    joined, since looking ahead would hold a live chunk back.
    """
    if speed <= 0:
        raise ConfigurationError(f"pacing speed must be positive, got {speed}")
    bytes_per_second = sample_rate * channels * PCM_SAMPLE_WIDTH * speed
    clock = pace_clock(tick)
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = 0
    if isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            due = started + sent / bytes_per_second
            if due > loop.time():
                await clock.wait_until(due)
            yield chunk
            sent += len(chunk)
        return
    unwaited = 0
    source = iter(chunks)
    pending = next(source, None)
    while pending is not None:  # audio in memory: the wait is the only yield to the loop it needs
        due = started + sent / bytes_per_second
        now = loop.time()
        if due > now:
            await clock.wait_until(due)
            now = loop.time()
            unwaited = 0
        else:
            unwaited += 1
            if unwaited % CATCH_UP_BURST == 0:
                await asyncio.sleep(0)  # far behind schedule: still let other tasks run
        burst, size = [pending], len(pending)
        sent += size
        pending = next(source, None)
        while (
            pending is not None
            and size + len(pending) <= join_up_to
            and started + sent / bytes_per_second <= now
        ):
            burst.append(pending)  # due too: it goes out in the same piece
            size += len(pending)
            sent += len(pending)
            pending = next(source, None)
        yield burst[0] if len(burst) == 1 else b"".join(burst)
