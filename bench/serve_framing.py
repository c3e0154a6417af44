"""Does the transcript depend on how a client frames and paces its audio? WER through `beluga serve`.

``python -m bench.serve_framing`` starts `beluga serve` (local engine) in this process and streams the
pyannote call and a stitched conversation (bench/local_data.py; ``--all`` adds the second one) in
20, 50, 100 and 200 ms AudioEvents, as fast as the server takes them and at 1x, 2x and 4x real
time, one stream at a time. It prints WER per frame size and pace, the spread (worst / best WER),
how many runs gave finals identical to the first, word for word and time for time, and end of
speech to final at real time. Writes the ``serve-framing`` section of docs/benchmarks.md. About
10 minutes (most of it real-time streaming).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from beluga_voice.audio import float_to_pcm16
from beluga_voice.providers.aws_transcribe.eventstream import decode_message
from beluga_voice.providers.aws_transcribe.messages import audio_event, end_of_stream
from beluga_voice.providers.aws_transcribe.transcript_json import parse_transcript_event
from beluga_voice.server import LocalEngineFactory, ServerConfig, TranscribeServer, serve_in_background
from beluga_voice.server.testing import open_stream
from beluga_voice.stt.model import TranscriptResult
from bench.local_data import RATE, Recording, WordErrors, conversations, pyannote_sample
from bench.local_engine import StreamRun, end_latencies, percentile
from bench.report import table, write_section

FRAME_MS = (20, 50, 100, 200)
PACES: tuple[float | None, ...] = (None, 1.0, 2.0, 4.0)
QUERY = "language-code=en-US&media-encoding=pcm&sample-rate=16000"


@dataclass
class Cell:
    """All recordings streamed with one frame size at one pace."""

    errors: WordErrors = field(default_factory=WordErrors)
    finals: dict[str, list[tuple[str, float, float]]] = field(default_factory=dict)
    runs: list[StreamRun] = field(default_factory=list)


def pace_label(speed: float | None) -> str:
    return "unpaced" if speed is None else f"{speed:g}x"


async def stream(
    server: TranscribeServer, recording: Recording, frame_ms: int, speed: float | None
) -> StreamRun:
    """One client: AudioEvents on a fixed schedule (or back to back), results read as they come."""
    run = StreamRun(recording)
    pcm = float_to_pcm16(recording.samples)
    size = RATE * 2 * frame_ms // 1000
    loop = asyncio.get_running_loop()
    async with open_stream(f"{server.url}?{QUERY}", ping_interval=None) as ws:

        async def read() -> None:
            async for frame in ws:
                assert isinstance(frame, bytes)
                message = decode_message(frame)
                if message.event_type == "TranscriptEvent":
                    arrived = time.monotonic()
                    run.results += [(arrived, r) for r in parse_transcript_event(message.payload)]

        reader = asyncio.create_task(read())
        started = loop.time()
        for offset in range(0, len(pcm), size):
            if speed is not None:
                delay = started + offset / (RATE * 2) / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await ws.send(audio_event(pcm[offset : offset + size]))
            run.fed.append((min(offset + size, len(pcm)) / 2 / RATE, time.monotonic()))
        await ws.send(end_of_stream())
        await reader
    return run


def final_words(results: Sequence[TranscriptResult]) -> list[tuple[str, float, float]]:
    return [(w.text, w.start, w.end) for r in results if r.is_final for w in r.words]


async def main(frame_sizes: Sequence[int], paces: Sequence[float | None], every: bool) -> None:
    recordings = [pyannote_sample(), *conversations()[: 2 if every else 1]]
    cells: dict[tuple[int, float | None], Cell] = {(ms, p): Cell() for ms in frame_sizes for p in paces}
    config = ServerConfig(
        port=0, auth=False, engine=LocalEngineFactory(), idle_timeout=60.0, max_ahead_seconds=None
    )
    async with serve_in_background(config) as server:
        warm_up = Recording("warm-up", recordings[0].samples[: 8 * RATE], ())
        await stream(server, warm_up, 100, None)  # the first decodes pay one-off costs
        for speed in paces:
            for recording in recordings:
                started = time.monotonic()
                runs = [await stream(server, recording, ms, speed) for ms in frame_sizes]
                for ms, run in zip(frame_sizes, runs, strict=True):
                    cell = cells[ms, speed]
                    cell.errors.add(recording.text, run.transcript().text)
                    cell.finals[recording.name] = final_words(run.finals)
                    cell.runs.append(run)
                print(f"{pace_label(speed)} {recording.name}: {time.monotonic() - started:.0f} s", flush=True)

    reference = cells[frame_sizes[0], paces[0]].finals
    rates = [cell.errors.rate for cell in cells.values()]
    identical = sum(cell.finals == reference for cell in cells.values())
    rows: list[list[object]] = [
        [f"{ms} ms", *(f"{cells[ms, p].errors.rate:.1%}" for p in paces)] for ms in frame_sizes
    ]
    spread = max(rates) / min(rates) if min(rates) else float("inf")
    print(table(["frames", *map(pace_label, paces)], rows), flush=True)

    latency_rows: list[list[object]] = []
    for speed in paces:
        if speed != 1.0:
            continue
        for ms in frame_sizes:
            ends = [x for run in cells[ms, speed].runs[1:] for x in end_latencies(run)]  # the conversations
            latency_rows.append(
                [f"{ms} ms", len(ends), f"{percentile(ends, 50):.2f} s", f"{percentile(ends, 95):.2f} s"]
            )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    words = cells[frame_sizes[0], paces[0]].errors.words
    body = "\n\n".join(
        [
            "`beluga serve` with the local engine (tiny.en, default settings) in the benchmark's process; "
            "clients send AudioEvents of 20-200 ms as fast as the server takes them (held back by the "
            "socket while the engine decodes) or on a fixed schedule at 1x, 2x and 4x real time, one stream at "
            f"a time. Recordings: the pyannote call and {len(recordings) - 1} stitched conversation(s) "
            f"({words} reference words). Load average at the "
            f"end: {load}. Reproduce: `python -m bench.serve_framing`.",
            "**WER by frame size and pace**\n\n" + table(["frames", *map(pace_label, paces)], rows),
            table(
                ["figure", "value", "target"],
                [
                    ["WER spread (worst / best)", f"{spread:.2f}", "≤ 1.05"],
                    [
                        "runs with finals identical to the first (words and times)",
                        f"{identical} of {len(cells)}",
                        "all",
                    ],
                ],
            ),
            "**End of speech → final at real time** (the stitched conversations' turn ends followed by a "
            "pause, from sending the turn's last speech sample to receiving its final)\n\n"
            + table(["frames", "turn ends", "P50", "P95"], latency_rows),
        ]
    )
    write_section("serve-framing", "Frame size and pace through `beluga serve` (local engine)", body)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=list(FRAME_MS), help="frame sizes (ms)")
    parser.add_argument("--all", action="store_true", help="both stitched conversations")
    parser.add_argument(
        "--paces", nargs="+", default=[pace_label(p) for p in PACES], help="unpaced, 1x, 2x, 4x"
    )
    args = parser.parse_args()
    chosen = [None if p == "unpaced" else float(p.rstrip("x")) for p in args.paces]
    asyncio.run(main(args.frames, chosen, args.all))
