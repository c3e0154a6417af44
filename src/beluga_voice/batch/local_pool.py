"""Local worker processes, each holding one model, fed through a bounded queue.

Processes rather than threads: decoding holds native thread pools and Python-level work (VAD,
word timing) that a single interpreter would serialise. Workers are started with ``spawn`` (a
forked copy of a process with native threads running is unsafe) and with their native thread
pools bounded, so N workers x threads never exceed the cores. Workers ignore Ctrl-C; the driver
ends them itself, so an interrupted job stops at once and leaves no worker behind.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from typing import Any

from beluga_voice.batch.tasks import Task, TaskResult, Transcriber, WorkerSpec, bound_threads
from beluga_voice.errors import BelugaError

QUEUE_PER_WORKER = 2
"""Tasks waiting per worker: enough that no worker idles, few enough that a stop loses nothing."""
POLL_SECONDS = 0.5
STOP_SECONDS = 10.0

Message = tuple[str, int, Any]  # ("ready" | "started" | "done" | "fatal", worker number, payload)


def run_local_pool(spec: WorkerSpec, tasks: Sequence[Task], record: Any, workers: int) -> None:
    """Transcribe ``tasks`` on ``workers`` processes; ``record`` gets each result in this thread."""
    context = multiprocessing.get_context("spawn")
    inbox: Queue[Task | None] = context.Queue(maxsize=workers * QUEUE_PER_WORKER)
    outbox: Queue[Message] = context.Queue()
    processes: dict[int, BaseProcess] = {}
    current: dict[int, int | None] = {}
    ready: set[int] = set()
    numbers = iter(range(1 << 30))

    def start_worker() -> None:
        number = next(numbers)
        process = context.Process(
            target=_work, args=(spec, inbox, outbox, number), name=f"beluga-batch-{number}", daemon=True
        )
        with _environment(bound_threads(spec.cpu_threads)):
            process.start()
        processes[number] = process
        current[number] = None

    pending = deque(tasks)
    in_flight: dict[int, Task] = {}
    try:
        for _ in range(workers):
            start_worker()
        while pending or in_flight:
            while pending and len(in_flight) < workers * QUEUE_PER_WORKER:
                task = pending.popleft()
                inbox.put(task)
                in_flight[task.index] = task
            try:
                kind, number, payload = outbox.get(timeout=POLL_SECONDS)
            except queue.Empty:
                for number, process in list(processes.items()):
                    if not process.is_alive():
                        _replace_dead(number, process, current, in_flight, ready, processes, record)
                        start_worker()
                continue
            if kind == "fatal":
                raise BelugaError(str(payload))
            if kind == "ready":
                ready.add(number)
            elif kind == "started":
                current[number] = payload
            elif kind == "done":
                current[number] = None
                in_flight.pop(payload.index, None)
                record(payload)
        for _ in processes:
            inbox.put(None)
        for process in processes.values():
            process.join(STOP_SECONDS)
    finally:
        _stop(processes.values())
        for process in processes.values():
            process.close()  # drops its reference to the queues, so their semaphores are freed now
        processes.clear()
        for channel in (inbox, outbox):
            channel.cancel_join_thread()
            channel.close()


def _replace_dead(
    number: int,
    process: BaseProcess,
    current: dict[int, int | None],
    in_flight: dict[int, Task],
    ready: set[int],
    processes: dict[int, BaseProcess],
    record: Any,
) -> None:
    """A worker that died (killed, out of memory) fails the input it held; the job goes on."""
    del processes[number]
    if number not in ready:
        raise BelugaError(
            f"a batch worker process exited (code {process.exitcode}) before loading the model; "
            "run with --workers 1 --debug to see why"
        )
    index = current.pop(number, None)
    task = in_flight.pop(index, None) if index is not None else None
    if task is not None:
        record(
            TaskResult(
                task.index,
                task.source,
                error_code="worker_died",
                error=f"the worker process died (exit code {process.exitcode}) while transcribing it; "
                "too little memory for this many workers? Retry with fewer --workers",
            )
        )


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
