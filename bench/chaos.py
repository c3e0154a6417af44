"""Reconnection under chaos: faults injected and survived, words lost and duplicated, added latency.

``python -m bench.chaos`` streams a conversation of real speech (every utterance of the data set,
shuffled, twice, with pauses: about 2.7 minutes, four voices) with the AWS provider through
`beluga serve` on loopback (the local engine, deciding each utterance on its own audio) while the
server injects faults: first one of every kind (dropped TCP, InternalFailure, ServiceUnavailable,
LimitExceeded, refused upgrades 500/503/429, results withheld, an expired signature), then seeded
random ones. Every run is compared with a fault-free run of the same audio, word by word (text +
time, see ``beluga_voice.stt.wordcheck``).

Two parts:

* **paced** (``--speed``, default twice real time), with the provider's defaults: the figures a live stream sees - downtime per reconnection and how much later the finals
  right after a reconnection arrive than the same finals without faults;
* **fast** (eight times real time, one run per ``--seeds``), with and without speaker
  samples: words over many faults, and whether speaker labels survive the restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beluga_voice.providers.aws_transcribe import ReconnectPolicy
from beluga_voice.stt.model import TranscriptResult, Word
from beluga_voice.stt.provider import ConnectionEvent
from beluga_voice.stt.wordcheck import WordCheck, order_violations, pair_words
from bench.report import table, write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # one chaos kit, shared with the chaos tests

from reconnect_kit import (  # noqa: E402
    ContextFreeEngine,
    Conversation,
    ExpiringClock,
    Run,
    ScheduledFaults,
    aws,
    conversation,
    faults_survived,
    serving,
)

DATA = ROOT / ".cache" / "data"
# Eight times real time: a dead connection is noticed once the service could have read what was sent
# ahead of real time before the ping (pings travel behind the audio), so an unpaced flood would hide a
# black hole for as long as the audio lasts.
FAST_FEED: dict[str, Any] = {"max_speed": 8.0, "replay_seconds": 300.0, "show_speaker_label": True}
FAST_PINGS: dict[str, Any] = {"ping_interval": 0.5, "ping_timeout": 3.0}
AFTER_RECONNECT = 10.0
"""Finals arriving this many seconds after a reconnection count as 'right after' it."""


@dataclass
class TimedRun(Run):
    """A run with the wall time of every result and event."""

    result_times: list[float] = field(default_factory=list)
    event_times: list[float] = field(default_factory=list)
    started: float = 0.0


async def timed_stream(stt: Any, pcm: bytes) -> TimedRun:
    run = TimedRun(started=time.monotonic())

    def on_event(event: ConnectionEvent) -> None:
        run.events.append(event)
        run.event_times.append(time.monotonic())

    async for result in stt.stream([pcm], on_connection_event=on_event):
        run.results.append(result)
        run.result_times.append(time.monotonic())
    run.seconds = time.monotonic() - run.started
    return run


def final_latencies(run: TimedRun, speed: float) -> dict[int, float]:
    """Per final (index in ``run.results``): arrival minus when the audio at its end was sent."""
    begun = run.event_times[0] if run.event_times else run.started  # the first connection is up
    return {
        i: at - (begun + r.end / speed)
        for i, (r, at) in enumerate(zip(run.results, run.result_times, strict=True))
        if r.is_final and r.words
    }


def words_of_finals(results: list[TranscriptResult]) -> tuple[list[Word], list[int]]:
    words: list[Word] = []
    owners: list[int] = []
    for i, result in enumerate(results):
        if result.is_final:
            spoken = [w for w in result.words if not w.is_punctuation]
            words += spoken
            owners += [i] * len(spoken)
    return words, owners


def added_latency(faulted: TimedRun, reference: TimedRun, speed: float) -> list[float]:
    """Finals arriving within AFTER_RECONNECT s of a reconnection: latency minus the same final's
    latency in the fault-free run (finals matched by their words)."""
    late, base = final_latencies(faulted, speed), final_latencies(reference, speed)
    words, owners = words_of_finals(faulted.results)
    ref_words, ref_owners = words_of_finals(reference.results)
    match: dict[int, int] = {}
    for i, j in pair_words(ref_words, words):
        match.setdefault(owners[j], ref_owners[i])
    reconnected = [
        t for e, t in zip(faulted.events, faulted.event_times, strict=True) if e.kind == "reconnected"
    ]
    deltas = []
    for index, latency in late.items():
        arrived = faulted.result_times[index]
        if (
            index in match
            and match[index] in base
            and any(0 <= arrived - t <= AFTER_RECONNECT for t in reconnected)
        ):
            deltas.append(latency - base[match[index]])
    return deltas


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


@dataclass
class Outcome:
    name: str
    run: TimedRun
    check: WordCheck
    faults: Counter[str]
    stats: Any
    completed: bool
    talk: Conversation


def outcome(
    name: str, run: TimedRun, reference: list[Word], stats: Any, completed: bool, talk: Conversation
) -> Outcome:
    return Outcome(name, run, run.check(reference), faults_survived(run), stats, completed, talk)


async def faulted_run(
    engine: ContextFreeEngine, pcm: bytes, seed: int, rate: float, after: float, **options: Any
) -> tuple[TimedRun, Any, bool]:
    plan = ScheduledFaults(seed=seed, random_rate=rate, random_max_after=after, streams=15)
    async with serving(engine, faults=plan, clock=ExpiringClock(3)) as server:
        stt = aws(server, **options)
        try:
            run = await timed_stream(stt, pcm)
            completed = run.kinds()[-1:] == ["closed"]
        except Exception as exc:  # reported, not raised: the figures say what failed
            print(f"stream failed: {exc!r}")
            run, completed = TimedRun(), False
        return run, stt.last_stream_stats, completed


async def reference_run(engine: ContextFreeEngine, pcm: bytes, **options: Any) -> TimedRun:
    async with serving(engine) as server:
        return await timed_stream(aws(server, **options), pcm)


async def main(rounds: int, speed: float, seeds: int) -> None:
    engine = ContextFreeEngine()
    await engine.preload()
    talk = conversation(DATA, rounds=rounds, seed=1)
    pcm, audio_seconds = talk.pcm, talk.seconds
    print(f"conversation: {audio_seconds:.1f} s of audio")

    paced_options: dict[str, Any] = {
        "max_speed": speed,
        "show_speaker_label": True,
    }
    paced_ref = await reference_run(engine, pcm, **paced_options)
    run, stats, completed = await faulted_run(engine, pcm, seed=7, rate=0.5, after=12.0, **paced_options)
    paced = outcome(f"paced {speed:g}x, defaults", run, paced_ref.words, stats, completed, talk)
    print(f"paced: {paced.check.summary()}")

    fast_ref = (await reference_run(engine, pcm, **FAST_FEED)).words
    fast: list[Outcome] = []
    for seed in range(1, seeds + 1):
        for samples in (ReconnectPolicy().speaker_sample_seconds, 0.0):
            policy = ReconnectPolicy(
                max_attempts=40,
                max_outage=120.0,
                base_delay=0.05,
                max_delay=1.0,
                speaker_sample_seconds=samples,
            )
            run, stats, completed = await faulted_run(
                engine, pcm, seed=seed, rate=0.8, after=3.0, reconnect=policy, **FAST_PINGS, **FAST_FEED
            )
            label = f"fast, seed {seed}, speaker samples {'on' if samples else 'off'}"
            fast.append(outcome(label, run, fast_ref, stats, completed, talk))
            print(f"{label}: {fast[-1].check.summary()[:160]}")

    write_section("chaos", "Reconnection under chaos", report(audio_seconds, speed, paced, paced_ref, fast))


def report(
    audio_seconds: float, speed: float, paced: Outcome, paced_ref: TimedRun, fast: list[Outcome]
) -> str:
    everything = [paced, *fast]
    kinds: Counter[str] = Counter()
    for item in everything:
        kinds.update(item.faults)
    survived = all(item.completed for item in everything)
    fault_rows: list[list[object]] = [[kind, count] for kind, count in sorted(kinds.items())]
    fault_rows.append(["**total**", sum(kinds.values())])

    def word_row(item: Outcome) -> list[object]:
        check = item.check
        return [
            item.name,
            "yes" if item.completed else "**no**",
            sum(item.faults.values()),
            check.reference_words,
            len(check.lost),
            len(check.duplicated),
            f"{len(check.changed)} ({check.changed_ratio:.1%})",
            len(check.repeated),
            len(order_violations(item.run.results)),
            f"{check.speaker_agreement(within=item.talk.clean_voices):.3f}",
            f"{check.speaker_agreement(within=item.talk.spans('pyannote')):.3f}",
        ]

    downtimes = [e.downtime for e in paced.run.events if e.kind == "reconnected"]
    late = final_latencies(paced.run, speed)
    base = final_latencies(paced_ref, speed)
    deltas = added_latency(paced.run, paced_ref, speed)
    stats = paced.stats
    latency_rows: list[list[object]] = [
        ["reconnections", stats.reconnects if stats else "-"],
        [
            "downtime per reconnection (failure noticed -> replay sent), p50 / mean / max",
            f"{percentile(downtimes, 0.5):.2f} / {statistics.fmean(downtimes) if downtimes else float('nan'):.2f} / {max(downtimes, default=float('nan')):.2f} s",
        ],
        [
            "end-of-speech to final, fault-free run, p50 / p95",
            f"{percentile(list(base.values()), 0.5):.2f} / {percentile(list(base.values()), 0.95):.2f} s",
        ],
        [
            "end-of-speech to final, with faults, p50 / p95",
            f"{percentile(list(late.values()), 0.5):.2f} / {percentile(list(late.values()), 0.95):.2f} s",
        ],
        [
            f"added latency of the finals within {AFTER_RECONNECT:g} s after a reconnection, mean / max ({len(deltas)} finals)",
            f"{statistics.fmean(deltas) if deltas else float('nan'):.2f} / {max(deltas, default=float('nan')):.2f} s",
        ],
        [
            "audio sent again (replay + speaker samples) / of which speaker samples",
            f"{stats.replayed_seconds:.1f} s / {stats.timeline.voice_sample_seconds:.1f} s" if stats else "-",
        ],
        ["keep-alive silence", f"{stats.keepalive_seconds:.1f} s" if stats else "-"],
        [
            "audio lost to an outage longer than the replay buffer",
            f"{stats.lost_seconds:.1f} s" if stats else "-",
        ],
    ]
    return f"""
`python -m bench.chaos` - a {audio_seconds / 60:.1f}-minute conversation of real speech (every utterance of the
data set twice: a reader, a card player, two people on a phone call) streamed by the AWS provider to `beluga serve`
on loopback (local engine, each utterance decoded on its own audio) while the server injects faults: one of every
kind first, then seeded random ones on most connections. Each run is compared word by word with a fault-free run of
the same audio (text + time within 0.5 s; see `beluga_voice.stt.wordcheck`). **Lost**: a reference word with no word
at all within 1.5 s (audio that produced nothing). **Duplicated**: a word delivered twice in separate results.
**Re-decoded**: the audio was transcribed, with other words - a fresh recogniser session on replayed audio does not
always choose the same words (the recogniser's variance, not the stream's). **Repeated**: Whisper repeating itself
inside one result. Speaker agreement: share of matched words whose label follows the fault-free labelling,
on the two voices recorded on their own (reader, card player) and on the phone call, whose two voices the local
diarizer separates only some of the time even without faults.

All faults survived (every stream ended normally): **{"yes" if survived else "NO"}**.

Faults met, by kind (a connection that failed; "refused": a connection attempt that failed):

{table(["fault", "count"], fault_rows)}

Words (targets: 0 lost, 0 duplicated):

{table(["run", "ended normally", "faults", "reference words", "lost", "duplicated", "re-decoded", "repeated", "out of order", "speakers: reader + card player", "speakers: phone call"], [word_row(item) for item in everything])}

Latency and cost of reconnection (paced run, {speed:g}x real time, provider defaults):

{table(["", "value"], latency_rows)}

Fast runs feed audio at eight times real time (much of the conversation can be in flight, so the replay buffer
is raised to 300 s there); the paced run uses the default 30 s buffer. "Speaker samples off" shows what the samples
replayed at the start of a new connection buy: without them a restarted diarization may give a known voice a new
label.
"""


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="times every utterance is said (default 2)")
    parser.add_argument(
        "--speed", type=float, default=2.0, help="pace of the paced run (default 2x real time)"
    )
    parser.add_argument(
        "--seeds", type=int, default=3, help="fast runs (each with and without speaker samples)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.speed, args.seeds))
