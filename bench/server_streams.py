"""How many concurrent real-time streams one `beluga serve` process sustains.

``python -m bench.server_streams`` starts the server in its own process (so the clients' CPU is not
counted), then runs rounds of N concurrent clients, each streaming real speech (the 30 s pyannote
call, looped) at real time in 100 ms AudioEvents. For every result the client records its lag: the
time it arrived minus the time the audio up to the result's EndTime was sent. A round keeps real time
when every stream completes without an exception and the 95th percentile lag of partial results stays
under the bound (an engine that falls behind shows a lag that grows with the stream); the lag of finals,
which wait for the end of an utterance, is reported beside it.
Two engines: ``echo`` (the protocol path alone) and ``local`` (the embedded Whisper engine).

The cost of the server's telemetry: every stream always reports to a StreamTelemetry; with
``--metrics-port`` the Prometheus bridge also records, and a scraper reads /metrics. Alternating
rounds at one echo level, with the metrics port off and on (scraped every second), compare the
server's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from beluga_voice.audio import read_audio
from beluga_voice.providers.aws_transcribe.eventstream import decode_message
from beluga_voice.providers.aws_transcribe.messages import audio_event, end_of_stream
from beluga_voice.providers.aws_transcribe.transcript_json import parse_transcript_event
from beluga_voice.server import ENGINES, LocalEngineFactory, ServerConfig, serve_in_background
from beluga_voice.server.testing import open_stream
from bench.report import table, write_section
from bench.wakeups import cpu_seconds, wake_floor, wakeups

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / ".cache" / "data" / "pyannote" / "sample.wav"
RATE = 16000
CHUNK_SECONDS = 0.1
QUERY = "?language-code=en-US&media-encoding=pcm&sample-rate=16000"
LOCAL_LABEL = "the local Whisper engine (tiny.en, int8, {workers} decoding workers)"
LAG_BOUND = {"echo": 0.5, "local": 2.0}
"""95th percentile lag (s) of partial results a round may reach and still count as real time."""


def _serve(engine: str, workers: int, port_out: Any, stop: EventType, metrics: bool = False) -> None:
    async def main() -> None:
        factory = LocalEngineFactory(num_workers=workers) if engine == "local" else ENGINES[engine]()
        config = ServerConfig(
            port=0,
            auth=False,
            engine=factory,
            max_streams=10_000,
            idle_timeout=60,
            metrics_port=0 if metrics else None,
        )
        async with serve_in_background(config) as server:
            port_out.put((server.port, server.observability.port if server.observability else None))
            await asyncio.to_thread(stop.wait)

    asyncio.run(main())


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: list[float]) -> float:
    if len(values) >= 20:
        return statistics.quantiles(values, n=20)[-1]
    return max(values, default=float("nan"))


@dataclass
class Round:
    streams: int
    lags: list[float] = field(default_factory=list)
    final_lags: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu: float = 0.0
    seconds: float = 0.0
    scrapes: int = 0
    wakeups: int = 0
    steady: tuple[float, float, int] = (0.0, 0.0, 0)
    """CPU, wall seconds and wake-ups while every stream is connected and sending (5 s after the start
    to 5 s before the end of the audio): what an hour-long stream costs per hour."""

    def sustained(self, bound: float) -> bool:
        return not self.errors and bool(self.lags) and p95(self.lags) <= bound


async def _client(url: str, pcm: bytes, seconds: float, offset: int, result: Round) -> None:
    loop = asyncio.get_running_loop()
    chunk = int(RATE * CHUNK_SECONDS) * 2
    count = int(seconds / CHUNK_SECONDS)
    try:
        async with open_stream(url) as ws:
            start = loop.time()

            async def read() -> None:
                async for frame in ws:
                    message = decode_message(frame if isinstance(frame, bytes) else frame.encode())
                    if message.message_type != "event":
                        result.errors.append(message.get_str(":exception-type") or "error")
                        continue
                    for item in parse_transcript_event(message.payload):
                        lags = result.lags if item.is_partial else result.final_lags
                        lags.append(loop.time() - (start + item.end))

            reader = asyncio.create_task(read())
            for index in range(count):
                position = (offset + index * chunk) % (len(pcm) - chunk)
                position -= position % 2
                await asyncio.sleep(max(0.0, start + (index + 1) * CHUNK_SECONDS - loop.time()))
                await ws.send(audio_event(pcm[position : position + chunk]))
            await ws.send(end_of_stream())
            await asyncio.wait_for(reader, 60)
    except Exception as exc:
        result.errors.append(f"{type(exc).__name__}: {exc}")


async def _scrape_every_second(port: int, result: Round) -> None:
    """What a Prometheus server scraping every second does (15-60 s is usual: this is the worst case)."""
    while True:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        body = await reader.read()
        writer.close()
        if b"beluga_stt_audio_seconds_total" not in body:
            result.errors.append("a scrape of /metrics came back without the stream metrics")
        result.scrapes += 1
        await asyncio.sleep(1.0)


async def _round(
    url: str, pcm: bytes, streams: int, seconds: float, pid: int, metrics_port: int | None = None
) -> Round:
    result = Round(streams)
    cpu_before, woken_before = cpu_seconds(pid), wakeups(pid)
    loop = asyncio.get_running_loop()
    started = loop.time()
    scraper = asyncio.create_task(_scrape_every_second(metrics_port, result)) if metrics_port else None

    async def steady_state(warmup: float = 5.0) -> None:
        await asyncio.sleep(warmup)
        cpu0, wall0, woken0 = cpu_seconds(pid), loop.time(), wakeups(pid)
        await asyncio.sleep(max(0.0, seconds - 2 * warmup))
        result.steady = (cpu_seconds(pid) - cpu0, loop.time() - wall0, wakeups(pid) - woken0)

    sampler = asyncio.create_task(steady_state())
    # Streams start staggered and at different places in the call, as independent callers would.
    await asyncio.gather(*(_client(url, pcm, seconds, i * 7919 * 2 * 40, result) for i in range(streams)))
    await sampler
    if scraper is not None:
        scraper.cancel()
    result.seconds = loop.time() - started
    result.cpu = cpu_seconds(pid) - cpu_before
    result.wakeups = wakeups(pid) - woken_before
    return result


def run_engine(
    engine: str, levels: list[int], seconds: float, pcm: bytes, workers: int = 1, metrics: bool = False
) -> list[Round]:
    context = multiprocessing.get_context("spawn")
    port_out: Any = context.Queue()
    stop = context.Event()
    process = context.Process(target=_serve, args=(engine, workers, port_out, stop, metrics), daemon=True)
    process.start()
    try:
        port, metrics_port = port_out.get(timeout=120)
        url = f"ws://127.0.0.1:{port}/stream-transcription-websocket{QUERY}"
        rounds = []
        for streams in levels:
            assert process.pid is not None
            result = asyncio.run(_round(url, pcm, streams, seconds, process.pid, metrics_port))
            rounds.append(result)
            print(
                f"{engine}{' (metrics on)' if metrics else ''}: {streams} streams partial lag p50 {p50(result.lags):.2f}s "
                f"p95 {p95(result.lags):.2f}s, final lag p95 {p95(result.final_lags):.2f}s "
                f"cpu {100 * result.cpu / result.seconds:.0f}% errors {len(result.errors)} {result.errors[:1]}",
                flush=True,
            )
            if not result.sustained(LAG_BOUND[engine]):
                break
        return rounds
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="audio per stream in each round")
    parser.add_argument("--echo-levels", default="1,25,100,200,400,800")
    parser.add_argument("--local-levels", default="1,2,3,4,6,8")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="local engine num_workers")
    parser.add_argument("--telemetry-level", type=int, default=400, help="echo streams for the metrics cost")
    parser.add_argument("--telemetry-rounds", type=int, default=3, help="alternating off/on pairs")
    parser.add_argument("--cpu-levels", default="1,10,100", help="echo streams for the CPU per audio hour")
    parser.add_argument("--cpu-seconds", type=float, default=60.0, help="audio per stream in those rounds")
    parser.add_argument("--only-cpu", action="store_true", help="measure only the CPU per audio hour")
    args = parser.parse_args()
    pcm = read_audio(SPEECH).convert(RATE, 1).to_pcm16()
    if args.only_cpu:
        write_section(
            "server_cpu", "beluga serve: CPU per served stream at real time", cpu_per_stream(args, pcm)
        )
        return
    sections = []
    rows: list[list[object]] = []
    best: dict[str, int] = {}
    for engine, levels in (("echo", args.echo_levels), ("local", args.local_levels)):
        rounds = run_engine(engine, [int(n) for n in levels.split(",")], args.seconds, pcm, args.workers)
        for r in rounds:
            ok = r.sustained(LAG_BOUND[engine])
            if ok:
                best[engine] = r.streams
            rows.append(
                [
                    engine,
                    r.streams,
                    f"{p50(r.lags):.2f}",
                    f"{p95(r.lags):.2f}",
                    f"{p50(r.final_lags):.2f}",
                    f"{p95(r.final_lags):.2f}",
                    f"{100 * r.cpu / r.seconds:.0f}%",
                    len(r.errors),
                    "yes" if ok else "no",
                ]
            )
    summary = []
    for engine, label in (("echo", "the protocol path alone (echo engine)"), ("local", LOCAL_LABEL)):
        tried = [row for row in rows if row[0] == engine]
        failed = [row for row in tried if row[-1] == "no"]
        limit = f"the next level, {failed[0][1]}, fell behind" if failed else "no higher level was tried"
        summary.append(f"**{best.get(engine, 0)}** with {label.format(workers=args.workers)} ({limit})")
    sections.append("Concurrent real-time streams one server process sustained: " + "; ".join(summary) + ".")
    sections.append(
        table(
            [
                "engine",
                "streams",
                "partial lag p50 (s)",
                "partial lag p95 (s)",
                "final lag p50 (s)",
                "final lag p95 (s)",
                "server CPU",
                "errors",
                "real time",
            ],
            rows,
        )
    )
    sections.append(
        f"Each stream sends {args.seconds:g} s of the pyannote call at real time in 100 ms AudioEvents; lag is "
        "when a result arrives minus when the audio up to its EndTime was sent. Real time means no "
        f"exception and a p95 partial lag within {LAG_BOUND['echo']} s (echo) or {LAG_BOUND['local']} s (local); "
        "finals also wait for the end of the utterance (0.6 s of silence) and a decode of all of it. "
        "Server CPU is the server process alone, in % of one core; the clients run in the benchmark's own "
        "process on the same machine, which other work shares. `python -m bench.server_streams`."
    )
    sections.append(telemetry_cost(args.telemetry_level, args.telemetry_rounds, args.seconds, pcm))
    write_section("server_streams", "beluga serve: concurrent streams", "\n\n".join(sections))
    write_section("server_cpu", "beluga serve: CPU per served stream at real time", cpu_per_stream(args, pcm))


def cpu_per_stream(args: argparse.Namespace, pcm: bytes) -> str:
    """Server CPU-s per audio hour per stream, echo engine, 1/10/100 concurrent real-time streams."""
    levels = [int(n) for n in args.cpu_levels.split(",")]
    load_before = os.getloadavg()[0]
    floor, floor_rate = wake_floor()
    per_wake = floor / floor_rate
    rows: list[list[object]] = []
    for streams in levels:
        (r,) = run_engine("echo", [streams], args.cpu_seconds, pcm)
        audio_hours = streams * args.cpu_seconds / 3600
        steady_cpu, steady_wall, steady_woken = r.steady
        steady = steady_cpu / (steady_wall * streams / 3600)
        woken = steady_woken / steady_wall
        rows.append(
            [
                streams,
                f"{steady:.2f}",
                f"{r.cpu / audio_hours:.2f}",
                f"{woken:.1f}",
                f"{per_wake * woken / streams:.2f}",
                f"{p95(r.lags):.2f}",
                len(r.errors),
            ]
        )
        print(
            f"server cpu: {streams} streams {steady:.2f} CPU-s per audio hour (whole round "
            f"{r.cpu / audio_hours:.2f}), "
            f"{woken:.1f} wake-ups/s",
            flush=True,
        )
    load_after = os.getloadavg()[0]
    return (
        f"Server process CPU per hour of audio served, per stream, with the echo engine (the protocol path: "
        f"handshake, event-stream decoding, audio queues, results as the engine makes them - a partial every "
        f"0.5 s, a final every 2 s - encoded and sent). Each stream sends {args.cpu_seconds:g} s of the pyannote "
        "call at real time in 100 ms AudioEvents, every client on its own clock (10 frames a second each, "
        "arriving independently); the clients run in the benchmark's process. Targets: <= 2 CPU-s per audio "
        "hour for one stream, <= 1 per stream with 100. `python -m bench.server_streams --only-cpu`.\n\n"
        + table(
            [
                "streams",
                "server CPU-s per audio hour per stream, steady state",
                "whole round",
                "server wake-ups per second",
                "floor: an idle loop waking as often, per stream",
                "partial lag p95 (s)",
                "errors",
            ],
            rows,
        )
        + "\n\n*Steady state* is the server's CPU while every stream is connected and sending (from 5 s after "
        "the start to 5 s before the end of the audio): what an hour-long stream costs per hour. *Whole round* "
        "adds each stream's handshake and close. "
        + "*Wake-ups* are the server process's voluntary context switches in the steady state. The *floor* is "
        f"what this machine charges for waking alone: an asyncio loop that does nothing but sleep 0.1 s at a "
        f"time costs {floor:.2f} CPU-s per hour at {floor_rate:.1f} wake-ups a second ({per_wake:.2f} per "
        "wake-up per second), multiplied by the server's wake-ups. A single stream's 10 frames a second wake "
        "the server 10 times a second: that alone is above the 2 CPU-s target on this virtual machine. "
        f"Load average (1 min) {load_before:.2f} before these rounds, {load_after:.2f} after."
    )


def telemetry_cost(level: int, pairs: int, seconds: float, pcm: bytes) -> str:
    """Server CPU at ``level`` echo streams with the metrics port off and on, in alternating rounds."""
    cpu: dict[bool, list[float]] = {False: [], True: []}
    lags: dict[bool, list[float]] = {False: [], True: []}
    errors = 0
    for _ in range(pairs):
        for metrics in (False, True):
            (r,) = run_engine("echo", [level], seconds, pcm, metrics=metrics)
            cpu[metrics].append(r.cpu / r.seconds)
            lags[metrics].append(p95(r.lags))
            errors += len(r.errors)
    off, on = statistics.mean(cpu[False]), statistics.mean(cpu[True])
    rows: list[list[object]] = [
        [
            label,
            " / ".join(f"{100 * c:.1f}%" for c in cpu[metrics]),
            f"{100 * statistics.mean(cpu[metrics]):.1f}%",
            f"{max(lags[metrics]):.2f}",
        ]
        for metrics, label in ((False, "off (telemetry objects only)"), (True, "on, scraped every second"))
    ]
    return (
        f"**Telemetry cost.** Every served stream reports to a `StreamTelemetry` (audio per frame, "
        f"each result, the outcome); `--metrics-port` adds the Prometheus bridge. Server CPU at {level} "
        f"echo streams, {pairs} alternating rounds each (the rounds vary by a few points on this shared "
        f"machine, so compare the means):\n\n"
        + table(["metrics port", "server CPU per round", "mean", "worst partial lag p95 (s)"], rows)
        + f"\n\nWith the metrics port on, the server used {on / off:.2f}x the CPU of the rounds with it off"
        + (f"; {errors} stream error(s) in these rounds." if errors else "; no stream errors.")
    )


if __name__ == "__main__":
    main()
