"""Replays add nothing: a conversation streamed at real time through a proxy that cuts TCP every 3-8 s.

``python -m bench.cuts`` streams a 52 s conversation of real speech (a reader, a card player, a
phone call) with the AWS provider, speaker labels on, through a TCP proxy on 127.0.0.1 that resets
every connection after a seeded random 3-8 s, to `beluga serve` (the default local engine). Each
run is compared word by word with a fault-free run of the same audio at the same pace
(``beluga_voice.stt.wordcheck``): words added (candidates the fault-free run does not have),
duplicated, lost, re-decoded, and the share of matched words with the fault-free run's speaker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beluga_voice.server import LocalEngineFactory
from beluga_voice.stt.model import Word
from beluga_voice.stt.wordcheck import WordCheck, order_violations, stable_words
from bench.report import table, write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # one kit, shared with the tests

from reconnect_kit import (  # noqa: E402
    CuttingProxy,
    Run,
    aws,
    inserted_words,
    run_stream,
    serving,
    short_conversation,
)

DATA = ROOT / ".cache" / "data"


@dataclass
class CutRun:
    seed: int
    run: Run
    check: WordCheck
    cuts: int
    stats: Any
    inserted: list[Word]


async def reference(engine: LocalEngineFactory, pcm: bytes, options: dict[str, Any]) -> Run:
    async with serving(engine) as server:
        return await run_stream(aws(server, **options), pcm)


async def through_cuts(
    engine: LocalEngineFactory, pcm: bytes, seed: int, every: tuple[float, float], options: dict[str, Any]
) -> tuple[Run, int, Any]:
    async with serving(engine) as server, CuttingProxy(server.port, every=every, seed=seed) as proxy:
        stt = aws(server, endpoint_url=proxy.endpoint, **options)
        run = await run_stream(stt, pcm)
        return run, proxy.cuts, stt.last_stream_stats


def added(r: CutRun) -> int:
    """Words the fault-free runs have nothing for: inserted in a pause, or delivered twice."""
    return len(r.inserted) + len(r.check.duplicated)


async def main(speed: float, seeds: int) -> None:
    engine = LocalEngineFactory()
    await engine.preload()
    talk = short_conversation(DATA)
    every = (3.0, 8.0)  # cuts every 3-8 s of wall time (of audio at real time)
    options: dict[str, Any] = {"max_speed": speed, "show_speaker_label": True}
    print(f"conversation: {talk.seconds:.1f} s, pace {speed:g}x")
    fault_free = [(await reference(engine, talk.pcm, options)).words for _ in range(2)]
    ref_words = stable_words(fault_free)
    print(f"fault-free: {len(ref_words)} words in both runs")
    runs: list[CutRun] = []
    for seed in range(1, seeds + 1):
        run, cuts, stats = await through_cuts(engine, talk.pcm, seed, every, options)
        check = run.check(ref_words)
        runs.append(CutRun(seed, run, check, cuts, stats, inserted_words(check, fault_free)))
        print(f"seed {seed}: {cuts} cuts, {check.summary()[:200]}")
        print(f"  speakers {check.speaker_agreement():.3f}, {stats}")
    rows = [
        [
            r.seed,
            r.cuts,
            r.check.reference_words,
            f"{added(r)} ({added(r) / max(r.check.reference_words, 1):.1%})",
            len(r.check.lost),
            f"{r.stats.lost_seconds:.1f} s" if r.stats else "-",
            f"{len(r.check.changed)} ({r.check.changed_ratio:.1%})",
            len(order_violations(r.run.results)),
            f"{r.check.speaker_agreement():.3f}",
            f"{r.stats.sent_seconds / r.stats.audio_seconds:.2f}x" if r.stats else "-",
            f"{r.stats.timeline.voice_sample_seconds / r.stats.audio_seconds:.2f}x" if r.stats else "-",
            f"{r.stats.held_seconds:.1f} s" if r.stats else "-",
            f"{r.run.seconds:.0f} s",
        ]
        for r in runs
    ]
    body = (
        f"`python -m bench.cuts`: a {talk.seconds:.0f} s conversation of real speech (a reader, a card player, "
        "4 s of a phone call; pauses of 0.6-2.5 s) streamed by the AWS provider with speaker labels at "
        f"{speed:g}x real time to `beluga serve` (default local engine) through a TCP proxy on loopback that "
        "resets every connection after a seeded random 3-8 s. Each run is compared word by word with the words "
        "both of two fault-free runs at the same pace yield (text + time within 0.5 s, `beluga_voice.stt.wordcheck`). "
        "**Added**: words where neither fault-free run has any word (made up in a pause), or delivered twice; "
        "**lost**: reference words with no word at all within 1.5 s; **audio lost**: audio that left the replay "
        "buffer (`replay_seconds`, 30 s) before a final covered it; **re-decoded**: the audio was answered with other words; **speakers**: share of matched "
        "words carrying the fault-free run's label; **audio sent / audio**: every second sent on every connection "
        "(live audio, replays, speaker samples: what the service bills) over the stream's audio; **source held**: "
        "wall time the audio source waited because the replay buffer was full during an outage (nothing is dropped "
        "then); **wall**: the stream's duration. Targets: <= 1 % added, 0 lost, >= 98 % speakers.\n\n"
        + table(
            [
                "seed",
                "cuts",
                "reference words",
                "added",
                "lost",
                "audio lost (buffer)",
                "re-decoded",
                "out of order",
                "speakers as fault-free",
                "audio sent / audio",
                "of which speaker samples",
                "source held",
                "wall",
            ],
            rows,
        )
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    body += f"\n\nLoad average at the end: {load} (2 cores, shared with other work; the server decodes in this process)."
    write_section("cuts", "Replays under TCP cuts every 3-8 s", body)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speed", type=float, default=1.0, help="pace (default real time)")
    parser.add_argument("--seeds", type=int, default=2, help="runs through the cutting proxy")
    args = parser.parse_args()
    asyncio.run(main(args.speed, args.seeds))
