"""The same job on a Ray cluster: one actor per CPU, each holding the model once.

Actors read their inputs themselves (local paths on a shared disk, or fsspec URLs such as
``s3://``), so audio never travels through the driver; they return transcripts and errors, and
the driver writes outputs and the failures report exactly as a local run does.

A small pool of our own (``ray.wait`` on one call per actor) instead of ``ActorPool``: when an
actor dies (a node lost, out of memory) we know which input it held, fail just that one, and
start a replacement actor.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import deque
from collections.abc import Sequence
from typing import Any

from beluga_voice.batch.tasks import Task, TaskResult, Transcriber, WorkerSpec, bound_threads
from beluga_voice.errors import BelugaError, ConfigurationError

INSTALL_HINT = "install it with: pip install 'beluga-voice[ray]'"
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
"""Ray's own switch (read when ``ray`` is imported) for a single-machine instance: every daemon binds
127.0.0.1 and the node is named by the loopback address. Without it Ray replaces 127.0.0.1 by the
machine's network address and listens on all interfaces."""


class TranscribeActor:
    """A Ray actor around :class:`Transcriber`: the model loads once, in ``__init__``."""

    def __init__(self, spec: WorkerSpec) -> None:
        self._transcriber = Transcriber(spec)

    def ready(self) -> str:
        return self._transcriber.worker

    def run(self, task: Task) -> TaskResult:
        return self._transcriber.run(task)


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigurationError(f"--ray needs the ray package ({exc}); {INSTALL_HINT}") from None
    return ray


def connect(address: str | None) -> None:
    """Join the cluster at ``address``, or start a private local one (loopback only, no dashboard)."""
    ray = _ray()
    if ray.is_initialized():
        return
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            from beluga_voice.batch.job import available_cores

            ray.init(num_cpus=available_cores(), include_dashboard=False, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise BelugaError(f"cannot connect to {where}: {exc}") from None


def run_on_ray(
    spec: WorkerSpec,
    tasks: Sequence[Task],
    record: Any,
    address: str | None,
    actors: int | None = None,
) -> None:
    """Transcribe ``tasks`` on Ray actors; ``record`` gets each result on the driver."""
    if address is None and "ray" not in sys.modules:
        os.environ.update(LOOPBACK_ONLY)  # inherited by the daemons ray.init starts
    ray = _ray()
    ours = not ray.is_initialized()  # a caller's own Ray session is left running
    connect(address)
    handles: list[Any] = []
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        count = max(1, min(actors or max(1, cpus // spec.cpu_threads), len(tasks)))
        actor_class = ray.remote(
            num_cpus=spec.cpu_threads,
            runtime_env={"env_vars": bound_threads(spec.cpu_threads)},
        )(TranscribeActor)
        pending = deque(tasks)
        running: dict[Any, tuple[Any, Task]] = {}

        def give(actor: Any) -> None:
            if pending:
                task = pending.popleft()
                running[actor.run.remote(task)] = (actor, task)

        handles.extend(actor_class.remote(spec) for _ in range(count))
        try:  # a model that cannot load ends the job with its own message, as in a local run
            ray.get([handle.ready.remote() for handle in handles])
        except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
            raise BelugaError(f"a Ray actor could not start: {_cause(exc)}") from None
        for handle in handles:
            give(handle)
        while running:
            [ready], _ = ray.wait(list(running), num_returns=1)
            actor, task = running.pop(ready)
            try:
                result: TaskResult = ray.get(ready)
            except ray.exceptions.RayActorError as exc:
                record(
                    TaskResult(
                        task.index,
                        task.source,
                        error_code="worker_died",
                        error=f"the Ray actor died while transcribing it: {_cause(exc)}",
                    )
                )
                handles.remove(actor)
                actor = actor_class.remote(spec)
                handles.append(actor)
            else:
                record(result)
            give(actor)
    finally:
        for handle in handles:
            ray.kill(handle)
        if ours:
            ray.shutdown()


def _cause(exc: BaseException) -> str:
    """The underlying error's message (a BelugaError raised in the actor keeps its own words)."""
    cause = getattr(exc, "cause", None) or exc.__cause__
    if isinstance(cause, BelugaError):
        return cause.message
    lines = [line for line in str(cause or exc).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
