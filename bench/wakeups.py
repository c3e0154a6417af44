"""What a process costs per wake-up: its CPU time and wake-ups read from /proc, and this machine's floor.

On a virtual machine a wake-up (timer interrupt, scheduler, the syscall that blocked) costs far more
than the Python that runs after it, so at real time a stream's CPU follows its wake-ups per second.
The benches print both, beside the floor: an event loop that does nothing but wake.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time of every thread of ``pid`` (default: this process), in ns precision from schedstat."""
    tasks = Path(f"/proc/{pid or os.getpid()}/task")
    total = 0
    for task in tasks.iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
    return total / 1e9


def wakeups(pid: int | None = None) -> int:
    """Times the threads of ``pid`` blocked and were woken again (voluntary context switches)."""
    tasks = Path(f"/proc/{pid or os.getpid()}/task")
    total = 0
    for task in tasks.iterdir():
        try:
            status = (task / "status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                total += int(line.split()[1])
    return total


def wake_floor(seconds: float = 10.0, rate: float = 10.0) -> tuple[float, float]:
    """An asyncio loop that only sleeps ``1 / rate`` s at a time: (CPU-s per hour, wake-ups per second)."""

    async def run() -> tuple[float, float]:
        cpu0, wall0, woken0 = cpu_seconds(), time.perf_counter(), wakeups()
        for _ in range(int(seconds * rate)):
            await asyncio.sleep(1 / rate)
        wall = time.perf_counter() - wall0
        return (cpu_seconds() - cpu0) / wall * 3600, (wakeups() - woken0) / wall

    return asyncio.run(run())
