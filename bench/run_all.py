"""Run every benchmark in turn (``make bench``); each rewrites its own section of docs/benchmarks.md.

Each runs in its own process, one after another, so one benchmark's threads, memory and model
loads never weigh on the next one's figures. A failing benchmark is reported and the rest go on.
"""

from __future__ import annotations

import subprocess
import sys
import time

BENCHMARKS = (
    "bench.aws_client",
    "bench.server_streams",
    "bench.media",
    "bench.speaker_model",
    "bench.local_engine",
    "bench.serve_framing",
    "bench.languages",
    "bench.batch",
    "bench.cuts",
    "bench.chaos",
    "bench.quiet_service",
)


def main() -> int:
    failed: list[str] = []
    for module in BENCHMARKS:
        print(f"== {module}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", module])
        print(f"== {module}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(module)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
