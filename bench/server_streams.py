"""How many concurrent real-time streams one `beluga serve` process sustains.

``python -m bench.server_streams`` starts the server in its own process (so the clients' CPU is not
counted), then runs rounds of N concurrent clients, each streaming real speech (the 30 s pyannote
call, looped) at real time in 100 ms AudioEvents. For every result the client records its lag: the
time it arrived minus the time the audio up to the result's EndTime was sent. A round is sustained
when every stream completes without an exception and the 95th percentile lag stays under the bound.
Two engines: ``echo`` (the protocol path alone) and ``local`` (the embedded Whisper engine).
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
from beluga_voice.server import ENGINES, ServerConfig, serve_in_background
from beluga_voice.server.testing import open_stream
from bench.report import table, write_section

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / ".cache" / "data" / "pyannote" / "sample.wav"
RATE = 16000
CHUNK_SECONDS = 0.1
QUERY = "?language-code=en-US&media-encoding=pcm&sample-rate=16000"
LAG_BOUND = {"echo": 0.5, "local": 2.5}
"""95th percentile lag (s) a round may reach and still count as real time."""


def _serve(engine: str, port_out: Any, stop: EventType) -> None:
    async def main() -> None:
        config = ServerConfig(
            port=0, auth=False, engine=ENGINES[engine](), max_streams=10_000, idle_timeout=60
        )
        async with serve_in_background(config) as server:
            port_out.put(server.port)
            await asyncio.to_thread(stop.wait)

    asyncio.run(main())


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Round:
    streams: int
    lags: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu: float = 0.0
    seconds: float = 0.0

    @property
    def p50(self) -> float:
        return statistics.median(self.lags) if self.lags else float("nan")

    @property
    def p95(self) -> float:
        return (
            statistics.quantiles(self.lags, n=20)[-1]
            if len(self.lags) >= 20
            else max(self.lags, default=float("nan"))
        )

    def sustained(self, bound: float) -> bool:
        return not self.errors and bool(self.lags) and self.p95 <= bound


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
                        result.lags.append(loop.time() - (start + item.end))

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


async def _round(url: str, pcm: bytes, streams: int, seconds: float, pid: int) -> Round:
    result = Round(streams)
    cpu_before = _cpu_seconds(pid)
    loop = asyncio.get_running_loop()
    started = loop.time()
    # Streams start staggered and at different places in the call, as independent callers would.
    await asyncio.gather(*(_client(url, pcm, seconds, i * 7919 * 2 * 40, result) for i in range(streams)))
    result.seconds = loop.time() - started
    result.cpu = _cpu_seconds(pid) - cpu_before
    return result


def run_engine(engine: str, levels: list[int], seconds: float, pcm: bytes) -> list[Round]:
    context = multiprocessing.get_context("spawn")
    port_out: Any = context.Queue()
    stop = context.Event()
    process = context.Process(target=_serve, args=(engine, port_out, stop), daemon=True)
    process.start()
    try:
        port = port_out.get(timeout=120)
        url = f"ws://127.0.0.1:{port}/stream-transcription-websocket{QUERY}"
        rounds = []
        for streams in levels:
            assert process.pid is not None
            result = asyncio.run(_round(url, pcm, streams, seconds, process.pid))
            rounds.append(result)
            print(
                f"{engine}: {streams} streams p50 {result.p50:.2f}s p95 {result.p95:.2f}s "
                f"cpu {100 * result.cpu / result.seconds:.0f}% errors {len(result.errors)}",
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
    parser.add_argument("--echo-levels", default="1,10,25,50,100,200")
    parser.add_argument("--local-levels", default="1,2,3,4,6,8")
    args = parser.parse_args()
    pcm = read_audio(SPEECH).convert(RATE, 1).to_pcm16()
    sections = []
    rows: list[list[object]] = []
    best: dict[str, int] = {}
    for engine, levels in (("echo", args.echo_levels), ("local", args.local_levels)):
        rounds = run_engine(engine, [int(n) for n in levels.split(",")], args.seconds, pcm)
        for r in rounds:
            ok = r.sustained(LAG_BOUND[engine])
            if ok:
                best[engine] = r.streams
            rows.append(
                [
                    engine,
                    r.streams,
                    f"{r.p50:.2f}",
                    f"{r.p95:.2f}",
                    f"{100 * r.cpu / r.seconds:.0f}%",
                    len(r.errors),
                    "yes" if ok else "no",
                ]
            )
    sections.append(
        f"Sustained concurrent real-time streams in one server process: **{best.get('echo', 0)}** with the "
        f"protocol path alone (echo engine; more were not tried if every level passed), **{best.get('local', 0)}** "
        "with the local Whisper engine (tiny.en, int8)."
    )
    sections.append(
        table(["engine", "streams", "lag p50 (s)", "lag p95 (s)", "server CPU", "errors", "real time"], rows)
    )
    sections.append(
        f"Each stream sends {args.seconds:g} s of the pyannote call at real time in 100 ms AudioEvents; lag is "
        "when a result arrives minus when the audio up to its EndTime was sent. Real time means no "
        f"exception and p95 lag within {LAG_BOUND['echo']} s (echo) or {LAG_BOUND['local']} s (local: finals wait "
        "for 0.6 s of trailing silence). Server CPU is the server process alone, in % of one core. "
        "`python -m bench.server_streams`."
    )
    write_section("server_streams", "beluga serve: concurrent streams", "\n\n".join(sections))


if __name__ == "__main__":
    main()
