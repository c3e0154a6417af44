"""A batch job from start to end: plan (skip what is done), run on a backend, write and report.

The driver (this process) is the only writer: workers, wherever they run, return transcripts and
errors, and the driver writes each output atomically and each failure to ``_failures.jsonl`` the
moment it arrives. Whatever stops the job, every output on disk is complete and the next run
picks up the rest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beluga_voice.batch.inputs import BatchInput
from beluga_voice.batch.outputs import FailureLog, is_done, output_paths, remove_leftovers, write_atomically
from beluga_voice.batch.tasks import LOCAL, Task, TaskResult, WorkerSpec
from beluga_voice.errors import BelugaError, ConfigurationError
from beluga_voice.stt.serializers import OutputFormat

DEFAULT_MAX_STREAMS = 25
"""Amazon Transcribe's default quota of concurrent streams per account and region."""

Record = Callable[[TaskResult], None]
"""How a backend hands each finished task back to the driver (always on the driver's thread)."""


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class BatchJob:
    """What to transcribe, how, and where the outputs go."""

    inputs: Sequence[BatchInput]
    output_dir: Path
    fmt: OutputFormat = "text"
    provider: str = LOCAL
    options: Mapping[str, Any] = field(default_factory=dict)
    """Provider keyword arguments shared by every input (per-input options override them)."""
    overwrite: bool = False
    workers: int | None = None
    """Local worker processes or Ray actors; default: one per core (local), per cluster CPU (Ray)."""
    threads_per_worker: int | None = None
    """Native threads per worker; default: the cores shared out (cores // workers, 1 on Ray)."""
    max_streams: int = DEFAULT_MAX_STREAMS
    """Concurrent streams for remote providers (``aws``)."""
    ray: bool = False
    ray_address: str | None = None
    """With ``ray``: the cluster to join (``host:port`` or ``auto``); ``None`` starts a local one."""

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigurationError(f"workers must be at least 1, got {self.workers}")
        if self.max_streams < 1:
            raise ConfigurationError(f"max_streams must be at least 1, got {self.max_streams}")


@dataclass
class JobProgress:
    """Counts so far, for a progress display; ``speed`` is audio seconds per wall second."""

    total: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    audio_seconds: float = 0.0
    busy_seconds: float = 0.0
    """Time the workers spent on inputs (reading, decoding), added up over workers."""
    retries: int = 0
    """Streams the service refused for quota and that were tried again after a backoff."""
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def to_run(self) -> int:
        return self.total - self.skipped

    @property
    def speed(self) -> float:
        return self.audio_seconds / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left, from the average time per finished input (None until one finishes)."""
        finished = self.done + self.failed
        if finished == 0:
            return None
        return self.elapsed / finished * (self.to_run - finished)


@dataclass
class JobReport(JobProgress):
    output_dir: Path = Path()
    failures_path: Path | None = None
    worker_peak_mb: dict[str, float] = field(default_factory=dict)
    """Peak resident memory of each worker process (MB), as the workers reported it."""

    @property
    def peak_memory_mb(self) -> float:
        """The workers' peaks added up: the memory the job needed at most, model copies included."""
        return sum(self.worker_peak_mb.values())


Runner = Callable[[WorkerSpec, Sequence[Task], Record], None]


def run_job(
    job: BatchJob,
    *,
    on_progress: Callable[[JobProgress], None] | None = None,
    on_failure: Callable[[TaskResult], None] | None = None,
) -> JobReport:
    """Run ``job`` to the end (or until interrupted) and say what happened.

    ``on_progress`` is called after every finished input; ``on_failure`` with each failed one.
    """
    paths = output_paths(job.inputs, job.output_dir, job.fmt)
    report = JobReport(total=len(job.inputs), output_dir=job.output_dir)
    tasks: list[Task] = []
    for index, (item, path) in enumerate(zip(job.inputs, paths, strict=True)):
        if not job.overwrite and is_done(path):
            report.skipped += 1
        else:
            tasks.append(Task(index, item.source, item.relative.stem, dict(item.options)))
    remove_leftovers(job.output_dir)
    if on_progress:
        on_progress(report)

    def record(result: TaskResult) -> None:
        report.retries += result.attempts - 1
        report.busy_seconds += result.seconds
        if result.worker:
            report.worker_peak_mb[result.worker] = max(
                result.peak_rss_mb, report.worker_peak_mb.get(result.worker, 0.0)
            )
        if result.text is not None:
            try:
                write_atomically(paths[result.index], result.text)
            except BelugaError as exc:
                result = TaskResult(result.index, result.source, error_code=exc.code, error=exc.message)
        if result.text is None:
            report.failed += 1
            failures.add(result.source, result.error_code, result.error)
            if on_failure:
                on_failure(result)
        else:
            report.done += 1
            report.audio_seconds += result.audio_seconds
        if on_progress:
            on_progress(report)

    with FailureLog(job.output_dir) as failures:
        try:
            if tasks:
                _runner(job, len(tasks))(_worker_spec(job, len(tasks)), tasks, record)
        finally:
            report.finished = time.monotonic()
            report.failures_path = failures.path if failures.count else None
    return report


def _workers(job: BatchJob, todo: int) -> int:
    return max(1, min(job.workers or available_cores(), todo))


def _worker_spec(job: BatchJob, todo: int) -> WorkerSpec:
    # N workers x threads <= cores: each worker's native pools get their share of the machine.
    threads = job.threads_per_worker or (1 if job.ray else max(1, available_cores() // _workers(job, todo)))
    return WorkerSpec(job.provider, dict(job.options), job.fmt, cpu_threads=threads)


def _runner(job: BatchJob, todo: int) -> Runner:
    if job.ray:
        from beluga_voice.batch.ray_pool import run_on_ray

        return lambda spec, tasks, record: run_on_ray(spec, tasks, record, job.ray_address, job.workers)
    if job.provider == LOCAL:
        from beluga_voice.batch.local_pool import run_local_pool

        workers = _workers(job, todo)
        return lambda spec, tasks, record: run_local_pool(spec, tasks, record, workers)
    from beluga_voice.batch.streams import run_streams

    return lambda spec, tasks, record: run_streams(spec, tasks, record, job.max_streams)
