"""Delivers session events in order to callbacks and to ``events()`` readers.

One dispatcher task does the delivery, so a slow callback delays later callbacks but never the
transcription, and every reader sees the same order.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import TypeVar

from beluga_voice.session.events import SessionError, SessionEvent

log = logging.getLogger("beluga_voice.session")

E = TypeVar("E", bound=SessionEvent)

EventCallback = Callable[[E], object]
"""A sync function, or an async one (its coroutine is awaited before the next event)."""


class EventStream:
    """``async for event in session.events()``: every event from subscription to the session's end."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[SessionEvent | None] = asyncio.Queue()
        bus._subscribe(self._queue)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> SessionEvent:
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        """Stop receiving events (only needed when leaving the loop before the session ends)."""
        self._bus._unsubscribe(self._queue)


class EventBus:
    def __init__(self) -> None:
        self._callbacks: list[tuple[type[SessionEvent], Callable[[SessionEvent], object]]] = []
        self._subscribers: list[asyncio.Queue[SessionEvent | None]] = []
        self._pending: asyncio.Queue[SessionEvent | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def on(self, event_type: type[E], callback: EventCallback[E]) -> Callable[[], None]:
        if not (isinstance(event_type, type) and issubclass(event_type, SessionEvent)):
            raise TypeError(
                f"on() takes an event class such as FinalTranscript or SessionEvent, got {event_type!r}"
            )
        if not callable(callback):
            raise TypeError(f"on({event_type.__name__}, ...) needs a callable, got {callback!r}")
        entry: tuple[type[SessionEvent], Callable[[SessionEvent], object]] = (event_type, callback)  # type: ignore[assignment]
        self._callbacks.append(entry)

        def unsubscribe() -> None:
            if entry in self._callbacks:
                self._callbacks.remove(entry)

        return unsubscribe

    def events(self) -> EventStream:
        return EventStream(self)

    def emit(self, event: SessionEvent) -> None:
        if not self._closed:
            self._pending.put_nowait(event)

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="beluga-session-events")
        return self._task

    async def close(self) -> None:
        """Deliver everything emitted so far, then end every reader."""
        if not self._closed:
            self._closed = True
            self._pending.put_nowait(None)
        await asyncio.shield(self.start())

    def _subscribe(self, queue: asyncio.Queue[SessionEvent | None]) -> None:
        if self._closed and (self._task is None or self._task.done()):
            queue.put_nowait(None)
        else:
            self._subscribers.append(queue)

    def _unsubscribe(self, queue: asyncio.Queue[SessionEvent | None]) -> None:
        if queue in self._subscribers:
            self._subscribers.remove(queue)
        queue.put_nowait(None)

    async def _run(self) -> None:
        while True:
            event = await self._pending.get()
            if event is None:
                for queue in self._subscribers:
                    queue.put_nowait(None)
                self._subscribers.clear()
                return
            for queue in self._subscribers:
                queue.put_nowait(event)
            for event_type, callback in list(self._callbacks):
                if isinstance(event, event_type):
                    await self._call(callback, event)

    async def _call(self, callback: Callable[[SessionEvent], object], event: SessionEvent) -> None:
        try:
            outcome = callback(event)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            log.exception("session callback %r failed on %s", callback, type(event).__name__)
            if not (isinstance(event, SessionError) and event.source == "callback"):
                self.emit(SessionError(error=exc, source="callback", fatal=False))
