"""Remote providers (Amazon Transcribe): many concurrent streams from one process, on asyncio.

The work happens at the service, so the limit is the account's quota of concurrent streams, not
the cores: ``max_streams`` streams run at once. A stream the service refuses for quota
(``LimitExceededException``) waits with jittered exponential backoff and tries again; only a
refusal that outlasts :data:`RATE_LIMIT_ATTEMPTS` fails its input.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Iterator, Sequence
from typing import Any

from beluga_voice.batch.tasks import Task, TaskResult, Transcriber, WorkerSpec
from beluga_voice.errors import RateLimitError

RATE_LIMITED = RateLimitError.code
RATE_LIMIT_ATTEMPTS = 12
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0


def run_streams(
    spec: WorkerSpec,
    tasks: Sequence[Task],
    record: Any,
    max_streams: int,
    *,
    backoff_base: float = BACKOFF_BASE_SECONDS,
) -> None:
    """Transcribe ``tasks`` with at most ``max_streams`` streams open at once."""
    asyncio.run(transcribe_concurrently(spec, tasks, record, max_streams, backoff_base=backoff_base))


async def transcribe_concurrently(
    spec: WorkerSpec,
    tasks: Sequence[Task],
    record: Any,
    max_streams: int,
    *,
    backoff_base: float = BACKOFF_BASE_SECONDS,
) -> None:
    transcriber = Transcriber(spec)
    todo: Iterator[Task] = iter(tasks)

    async def stream_slot() -> None:
        for task in todo:  # each slot takes the next input when its stream ends
            record(await with_backoff(transcriber, task, backoff_base))

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(max_streams, len(tasks))):
                group.create_task(stream_slot())
    finally:
        transcriber.close()


async def with_backoff(transcriber: Transcriber, task: Task, base: float) -> TaskResult:
    """One input, retried while the service says the quota is full."""
    for attempt in range(1, RATE_LIMIT_ATTEMPTS + 1):
        result = dataclasses.replace(await transcriber.arun(task), attempts=attempt)
        if result.error_code != RATE_LIMITED:
            return result
        if attempt < RATE_LIMIT_ATTEMPTS:
            bound = min(BACKOFF_MAX_SECONDS, base * 2 ** (attempt - 1))
            await asyncio.sleep(random.uniform(bound / 2, bound))
    return TaskResult(
        result.index,
        result.source,
        error_code=RATE_LIMITED,
        error=f"{result.error} (still refused after {RATE_LIMIT_ATTEMPTS} attempts with backoff; "
        "lower --max-streams or ask AWS for a higher concurrent-stream quota)",
        worker=result.worker,
        seconds=result.seconds,
        attempts=RATE_LIMIT_ATTEMPTS,
    )
