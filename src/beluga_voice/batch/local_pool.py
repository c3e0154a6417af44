"""Local worker processes, each holding one model, fed through a bounded queue.

Processes rather than threads: decoding holds native thread pools and Python-level work (VAD,
word timing) that a single interpreter would serialise. Workers are started with ``spawn`` (a
forked copy of a process with native threads running is unsafe) and with their native thread
pools bounded, so N workers x threads never exceed the cores. Workers ignore Ctrl-C; the driver
ends them itself, so an interrupted job stops at once and leaves no worker behind.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import queue
import signal
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from typing import Any

from beluga_voice.batch.tasks import Task, TaskResult, Transcriber, WorkerSpec, bound_threads
from beluga_voice.errors import BelugaError

QUEUE_PER_WORKER = 2
"""Inputs handed to a worker at once (the one it transcribes and the next): it never waits for
the driver, and a stop or a crash leaves little in flight."""
POLL_SECONDS = 0.5
STOP_SECONDS = 10.0

Message = tuple[str, int, Any]  # ("ready" | "started" | "done" | "fatal", worker number, payload)


@dataclass
class _Worker:
    """One worker process, its own inbox, and the inputs it was given and has not finished."""

    process: BaseProcess
    inbox: Queue[Task | None]
    assigned: dict[int, Task] = field(default_factory=dict)
    current: int | None = None
    ready: bool = False


def run_local_pool(spec: WorkerSpec, tasks: Sequence[Task], record: Any, workers: int) -> None:
    """Transcribe ``tasks`` on ``workers`` processes; ``record`` gets each result in this thread.

    Each worker has its own bounded inbox, so the driver always knows which inputs a worker holds:
    when one dies, the input it was transcribing fails and the ones still waiting go to the others.
    """
    context = multiprocessing.get_context("spawn")
    outbox: Queue[Message] = context.Queue()
    pool: dict[int, _Worker] = {}
    numbers = itertools.count()

    def start_worker() -> None:
        number = next(numbers)
        inbox: Queue[Task | None] = context.Queue(maxsize=QUEUE_PER_WORKER)
        process = context.Process(
            target=_work, args=(spec, inbox, outbox, number), name=f"beluga-batch-{number}", daemon=True
        )
        with _environment(bound_threads(spec.cpu_threads)):
            process.start()
        pool[number] = _Worker(process, inbox)

    pending = deque(tasks)
    try:
        for _ in range(workers):
            start_worker()
        while pending or any(worker.assigned for worker in pool.values()):
            for worker in pool.values():
                while pending and len(worker.assigned) < QUEUE_PER_WORKER:
                    task = pending.popleft()
                    worker.inbox.put(task)
                    worker.assigned[task.index] = task
            try:
                kind, number, payload = outbox.get(timeout=POLL_SECONDS)
            except queue.Empty:
                for number, worker in list(pool.items()):
                    if not worker.process.is_alive():
                        del pool[number]
                        pending.extendleft(_fail_dead(worker, record))
                        start_worker()
                continue
            worker = pool[number]
            if kind == "fatal":
                raise BelugaError(str(payload))
            if kind == "ready":
                worker.ready = True
            elif kind == "started":
                worker.current = payload
            elif kind == "done":
                worker.current = None
                worker.assigned.pop(payload.index, None)
                record(payload)
        for worker in pool.values():
            worker.inbox.put(None)
        for worker in pool.values():
            worker.process.join(STOP_SECONDS)
    finally:
        _stop([worker.process for worker in pool.values()])
        for worker in pool.values():
            worker.process.close()  # drops its reference to the queues, so their semaphores are freed now
            worker.inbox.cancel_join_thread()
            worker.inbox.close()
        pool.clear()
        outbox.cancel_join_thread()
        outbox.close()


def _fail_dead(worker: _Worker, record: Any) -> list[Task]:
    """A worker that died (killed, out of memory) fails the input it held; returns the ones it had
    not started, for the other workers."""
    if not worker.ready:
        raise BelugaError(
            f"a batch worker process exited (code {worker.process.exitcode}) before loading the model; "
            "run with --workers 1 --debug to see why"
        )
    held = worker.assigned.pop(worker.current, None) if worker.current is not None else None
    if held is not None:
        record(
            TaskResult(
                held.index,
                held.source,
                error_code="worker_died",
                error=f"the worker process died (exit code {worker.process.exitcode}) while transcribing "
                "it; too little memory for this many workers? Retry with fewer --workers",
            )
        )
    unstarted = sorted(worker.assigned.values(), key=lambda task: task.index, reverse=True)
    worker.assigned.clear()
    return unstarted  # reversed: extendleft puts them back in their order


def _work(spec: WorkerSpec, inbox: Queue[Task | None], outbox: Queue[Message], number: int) -> None:
    """A worker process: load the model once, then transcribe until the driver says stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _thread_lock_for_tqdm()
    try:
        transcriber = Transcriber(spec)
    except BelugaError as exc:
        outbox.put(("fatal", number, exc.message))
        return
    except Exception as exc:
        outbox.put(("fatal", number, f"a batch worker cannot start: {type(exc).__name__}: {exc}"))
        return
    outbox.put(("ready", number, None))
    while (task := inbox.get()) is not None:
        outbox.put(("started", number, task.index))
        result: TaskResult = transcriber.run(task)
        outbox.put(("done", number, result))
    transcriber.close()
    outbox.close()
    outbox.join_thread()  # every result is delivered before the process goes
    # Skip interpreter teardown: destroying the models' native thread pools then (Whisper's, and the
    # VAD faster-whisper caches) aborts with "terminate called without an active exception".
    os._exit(0)


def _thread_lock_for_tqdm() -> None:
    """faster-whisper's tqdm would otherwise create a process-shared lock (a named semaphore) that a
    worker ending with ``os._exit`` never releases; one worker needs only a thread lock."""
    try:
        from tqdm import tqdm
    except ImportError:
        return
    tqdm.set_lock(threading.RLock())


def _stop(processes: Any) -> None:
    """End every worker still running: SIGTERM, then SIGKILL for any that does not go."""
    alive = [p for p in processes if p.is_alive()]
    for process in alive:
        process.terminate()
    for process in alive:
        process.join(STOP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables while starting a child (spawned children copy the environment)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
