"""A small thread pool that runs urgent work first.

Many streams share one model. Finals (someone is waiting for the end of their sentence) must not
queue behind other streams' partials, so jobs carry a priority and the pool takes the most urgent
first, in submission order within a priority.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

URGENT = 0  # finals and end-of-utterance candidates
ROUTINE = 1  # partial results

_Job = tuple[int, int, Callable[[], Any] | None, Future[Any] | None]


class PriorityExecutor:
    """``workers`` daemon threads taking jobs by (priority, arrival)."""

    def __init__(self, workers: int = 1, name: str = "beluga-local") -> None:
        self._queue: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._order = itertools.count()
        self._workers = max(1, workers)
        self._name = name
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[[], T], priority: int = ROUTINE) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the local engine is closed")
            self._start_threads()
            self._queue.put((priority, next(self._order), fn, future))
        return future

    async def run(self, fn: Callable[[], T], priority: int = ROUTINE) -> T:
        """Run ``fn`` on the pool and await it; cancelling the await drops a job not yet started."""
        return await asyncio.wrap_future(self.submit(fn, priority))

    def shutdown(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _ in self._threads:
                self._queue.put((1 << 30, next(self._order), None, None))

    def _start_threads(self) -> None:
        while len(self._threads) < self._workers:
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        while True:
            _, _, fn, future = self._queue.get()
            if fn is None or future is None:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except BaseException as exc:  # handed to the awaiting coroutine
                future.set_exception(exc)
            else:
                future.set_result(result)
