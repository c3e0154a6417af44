"""Batch transcription throughput: 1 and 2 local worker processes, and Ray, on half an hour of speech.

The corpus is built from the real recordings in .cache/data: the pyannote two-speaker phone call
(30 s) as many separate files, and files of the pocketsphinx utterances (librivox reader and cards
speaker) concatenated with short pauses. Each run transcribes the whole corpus from scratch into
its own folder with the local engine (tiny.en, int8); figures are audio hours per wall hour (model
loading included), and the peak memory of the whole process tree (this driver, its workers, and
for Ray its daemons), sampled from /proc. Finally a finished job is re-run through the command line
to time the skip.

    python -m bench.batch [--minutes 30]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from beluga_voice.audio import read_audio
from beluga_voice.batch import BatchJob, JobReport, collect_inputs, run_job
from bench.report import table, write_section

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".cache" / "data"
RATE = 16000
PAUSE = np.zeros(int(0.6 * RATE), np.float32)


def build_corpus(folder: Path, minutes: float) -> tuple[int, float]:
    """Write about ``minutes`` of real speech as separate files; returns (files, seconds)."""
    call = read_audio(DATA / "pyannote" / "sample.wav").convert(RATE, 1).samples[:, 0]
    utterances = [
        read_audio(path).convert(RATE, 1).samples[:, 0]
        for path in sorted((DATA / "librivox").glob("*.wav")) + sorted((DATA / "cards").glob("*.wav"))
    ]
    stitched = np.concatenate([piece for u in utterances for piece in (u, PAUSE)])
    (folder / "calls").mkdir(parents=True)
    (folder / "readings").mkdir(parents=True)
    total, files = 0.0, 0
    while total < minutes * 60:
        kind, samples = ("calls", call) if files % 2 == 0 else ("readings", stitched)
        sf.write(folder / kind / f"{kind[:-1]}-{files:03d}.wav", samples, RATE, subtype="PCM_16")
        total += samples.size / RATE
        files += 1
    return files, total


class TreeSampler:
    """Every 0.2 s: the summed RSS of this process and its descendants (peak kept), and the CPU time
    of each descendant (the last value seen). CPU seconds do not depend on what else the machine
    runs, so they compare runs fairly on a shared machine, where wall times cannot."""

    def __init__(self) -> None:
        self.peak = 0
        self.cpu_ticks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.load_before = os.getloadavg()[0]
        self.load_after = 0.0

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.load_after = os.getloadavg()[0]

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu_ticks.values()) / os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            rss, cpu = tree_usage(os.getpid())
            self.peak = max(self.peak, rss)
            for pid, ticks in cpu.items():
                self.cpu_ticks[pid] = max(ticks, self.cpu_ticks.get(pid, 0))


def tree_usage(root: int) -> tuple[int, dict[int, int]]:
    """(summed RSS in bytes of ``root`` and its descendants, CPU ticks of each descendant)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue
        pid = int(entry.name)
        fields = stat.rsplit(")", 1)[1].split()
        parents[pid] = int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
        rss[pid] = next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
    total, cpu = 0, {}
    for pid in rss:
        walker = pid
        while walker not in (0, 1) and walker != root:
            walker = parents.get(walker, 0)
        if walker == root:
            total += rss[pid]
            if pid != root:
                cpu[pid] = ticks[pid]
    return total * 1024, cpu


@dataclass
class Run:
    name: str
    report: JobReport
    peak_bytes: int
    cpu_seconds: float
    load: tuple[float, float]

    @property
    def cpu_per_audio_hour(self) -> float:
        return self.cpu_seconds / (self.report.audio_seconds / 3600)

    @property
    def hours_per_hour(self) -> float:
        return self.report.audio_seconds / self.report.elapsed


def measure(name: str, corpus: Path, out: Path, **job: object) -> Run:
    inputs = collect_inputs([str(corpus)])
    with TreeSampler() as sampler:
        report = run_job(BatchJob(inputs, out, fmt="json", **job))  # type: ignore[arg-type]
    if report.failed:
        raise SystemExit(f"{name}: {report.failed} inputs failed; see {report.failures_path}")
    print(
        f"{name}: {report.audio_seconds / 3600:.2f} h in {report.elapsed:.1f} s, {sampler.cpu_seconds:.0f} CPU s",
        file=sys.stderr,
    )
    return Run(name, report, sampler.peak, sampler.cpu_seconds, (sampler.load_before, sampler.load_after))


def time_skip(corpus: Path, out: Path) -> float:
    """Wall time of ``beluga transcribe CORPUS --output-dir OUT`` when every output exists."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-m", "beluga_voice.cli.main", "transcribe", str(corpus)]
    started = time.monotonic()
    subprocess.run(
        [*command, "--output-dir", str(out), "-f", "json"], env=env, check=True, capture_output=True
    )
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="audio in the corpus (default 30)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray run")
    parser.add_argument(
        "--two-threads", action="store_true", help="also run 1 worker with 2 threads (what --workers 1 does)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="beluga-bench-batch-"))
    try:
        files, seconds = build_corpus(work / "corpus", args.minutes)
        corpus = work / "corpus"
        runs: list[Run] = []
        plans: list[tuple[str, Callable[[], Run]]] = [
            (
                "1 worker, 1 thread",
                lambda: measure("1w1t", corpus, work / "1w1t", workers=1, threads_per_worker=1),
            ),
            ("2 workers, 1 thread each", lambda: measure("2w", corpus, work / "2w", workers=2)),
        ]
        if args.two_threads:
            plans.insert(
                1, ("1 worker, 2 threads", lambda: measure("1w2t", corpus, work / "1w2t", workers=1))
            )
        if not args.no_ray:
            plans.append(
                ("Ray, local instance, 2 actors", lambda: measure("ray", corpus, work / "ray", ray=True))
            )
        for label, plan in plans:
            run = plan()
            run.name = label
            runs.append(run)
        skip = time_skip(corpus, work / "2w")
        load = os.getloadavg()
        write_section(
            "batch",
            "Batch transcription (beluga transcribe --output-dir)",
            body(runs, files, seconds, skip, load),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def body(runs: list[Run], files: int, seconds: float, skip: float, load: tuple[float, float, float]) -> str:
    by_name = {run.name: run for run in runs}
    one, two = by_name["1 worker, 1 thread"], by_name["2 workers, 1 thread each"]
    rows: list[list[object]] = [
        [
            run.name,
            f"{run.report.elapsed:.0f}",
            f"{run.load[0]:.1f} → {run.load[1]:.1f}",
            f"{run.hours_per_hour:.1f}",
            f"{run.hours_per_hour / one.hours_per_hour:.2f}x",
            f"{run.cpu_per_audio_hour:.0f}",
            f"{run.peak_bytes / 2**20:.0f}",
            f"{run.report.peak_memory_mb:.0f}",
        ]
        for run in runs
    ]
    lines = [
        f"Corpus: {files} WAV files, {seconds / 60:.1f} minutes of real speech, built from .cache/data: the "
        "pyannote two-speaker phone call (30 s) as every other file, and the 10 pocketsphinx utterances "
        "(librivox reader, cards speaker) concatenated with 0.6 s pauses (36 s) as the others. "
        "Local engine (tiny.en int8, faster-whisper's whole-file path), JSON output, every run from scratch, "
        "model loading included in the wall time. Reproduce: `python -m bench.batch`.",
        "",
        f"Load average {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} at the end, on 2 cores; each run's 1-minute "
        "load before → after is in the table (a run's own load carries into the next one's \"before\"). "
        "Wall times compare the runs only while nothing else uses the machine; CPU seconds per audio hour "
        "(all the job's processes except the driver: workers, and for Ray its daemons and actors) do not "
        "depend on other jobs, and show what parallelism and Ray cost in work.",
        "",
        table(
            [
                "run",
                "wall (s)",
                "load",
                "audio h per wall h",
                "vs 1 worker",
                "CPU s per audio h",
                "peak memory, process tree (MB)",
                "peak memory, workers (MB)",
            ],
            rows,
        ),
        "",
        f"- 2 workers vs 1 worker (1 thread each): **{two.hours_per_hour / one.hours_per_hour:.2f}x** the "
        f"throughput on this machine (target ≥ 1.7x on 2 idle cores); CPU per audio hour "
        f"{two.cpu_per_audio_hour / one.cpu_per_audio_hour:.2f}x that of 1 worker (1.00x = the second worker "
        "adds no work of its own, so on idle cores the speedup is bounded only by the cores).",
    ]
    if "1 worker, 2 threads" in by_name:
        lines[-1] += (
            " Against 1 worker using both cores (2 threads, what `--workers 1` does on 2 cores): "
            f"{two.hours_per_hour / by_name['1 worker, 2 threads'].hours_per_hour:.2f}x."
        )
    if "Ray, local instance, 2 actors" in by_name:
        ray = by_name["Ray, local instance, 2 actors"]
        lines.append(
            f"- Ray vs the local pool (2 actors vs 2 workers, 1 thread each): {ray.report.elapsed / two.report.elapsed - 1:+.0%} "
            f"wall time on this machine (target within 15 %); CPU per audio hour "
            f"{ray.cpu_per_audio_hour / two.cpu_per_audio_hour - 1:+.0%} (Ray's daemons and actor start-up); "
            f"Ray adds {(ray.peak_bytes - two.peak_bytes) / 2**20:+.0f} MB to the tree's peak memory."
        )
    lines.append(
        f"- Re-running the finished job (all {files} outputs present): **{skip:.2f} s** from the command line, "
        "interpreter start included (target < 5 s); no worker or model is started."
    )
    lines.append(
        "- Peak memory: process tree = summed RSS of the driver, the worker processes (and Ray's raylet, GCS "
        "and workers), sampled every 0.2 s; workers = each worker's own peak RSS as it reported it, added "
        "up (one model copy each)."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
