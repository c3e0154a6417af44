"""What a process costs per wake-up: its CPU time and wake-ups read from /proc, and this machine's floor.

On a virtual machine a wake-up (timer interrupt, scheduler, the syscall that blocked) costs far more
than the Python that runs after it, so at real time a stream's CPU follows its wake-ups per second.
The benches print both, beside the floor: an event loop that does nothing but wake.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import time
from multiprocessing.queues import Queue
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


def _sink(port_out: Queue[int]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port_out.put(server.getsockname()[1])
        connection, _ = server.accept()
        with connection:
            while connection.recv(1 << 16):
                pass


def send_floor(size: int = 6417, sends: int = 300, gap: float = 0.01) -> float:
    """CPU seconds this process pays per ``size``-byte send on loopback TCP to a reader in another
    process, one send every ``gap`` s (the reader wakes for each, as the service does for each audio
    event): on loopback the kernel's work for the receiving side is charged to the sender."""
    context = multiprocessing.get_context("spawn")
    port_out: Queue[int] = context.Queue()
    reader = context.Process(target=_sink, args=(port_out,), daemon=True)
    reader.start()
    try:
        with socket.create_connection(("127.0.0.1", port_out.get(timeout=30))) as connection:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            payload, spent = b"\0" * size, 0.0
            for _ in range(sends):
                started = time.thread_time()
                connection.sendall(payload)
                spent += time.thread_time() - started
                time.sleep(gap)
        return spent / sends
    finally:
        reader.join(timeout=5)
        if reader.is_alive():
            reader.kill()
