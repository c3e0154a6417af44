"""A quiet service: connections and audio sent vs audio in, for fault-free streams.

``python -m bench.quiet_service`` streams three recordings with the AWS provider (its liveness
defaults: pings every 5 s, 10 s to answer, 10 s drain) to `beluga serve --partials off` on loopback,
a service that answers each utterance only after it ends and says nothing at all about noise:

* a 52 s conversation of real speech (a reader, a card player, 4 s of a phone call), at real time
  and at the fast pace;
* a 10-minute monologue: the Asterisk prompts (one reader, read speech), shuffled with a fixed seed,
  with pauses of 0.3-1.5 s between prompts and 2-3 s every few prompts;
* 5 minutes of music-like noise (band-limited hiss under changing chords with a beat, seeded),
  loud (far above -45 dBFS) and without words: "speech" for an energy rule, no transcript ever.

Counted on both sides of the socket: the client's connections and audio sent
(``StreamStats``), the server's streams and audio received (its one log record per stream), and the
WebSocket pings the client sent and the pongs it got (its frame log), to show that liveness keeps
being checked while the feed runs far ahead of real time. Target: 1 connection and <= 1.01x audio
sent on every stream.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from beluga_voice.providers.aws_transcribe import AWSTranscribeSTT
from beluga_voice.server import LocalEngineFactory
from bench.report import table, write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # one kit, shared with the tests

from reconnect_kit import (  # noqa: E402
    KEY,
    RATE,
    music_like_noise,
    serving,
    short_conversation,
    speech,
    stitch,
)

DATA = ROOT / ".cache" / "data"
NOISE_PACE = 4.0
"""The noise once more at four times real time: 75 s of wall time with audio flowing and no answer."""
TARGET_SENT = 1.01
"""Audio sent (billed) over audio in, on a fault-free stream."""


def monologue(seconds: float = 600.0, seed: int = 0) -> bytes:
    """Read speech by one voice (the English Asterisk prompts, shuffled) with natural pauses, to
    ``seconds``: 0.3-1.5 s between prompts, 2-3 s every 3-6 prompts (a paragraph)."""
    prompts = sorted((DATA / "asterisk" / "en").glob("*.wav"))
    if not prompts:
        raise SystemExit(f"no prompts in {DATA / 'asterisk' / 'en'}: run ./scripts/fetch-data.sh")
    rng = np.random.default_rng(seed)
    pieces: list[Any] = [0.5]
    total = 0.5
    until_paragraph = int(rng.integers(3, 7))
    while total < seconds:
        for index in rng.permutation(len(prompts)):
            samples = speech(DATA, str(prompts[index].relative_to(DATA)))
            until_paragraph -= 1
            if until_paragraph == 0:
                pause = float(rng.uniform(2.0, 3.0))
                until_paragraph = int(rng.integers(3, 7))
            else:
                pause = float(rng.uniform(0.3, 1.5))
            pieces += [samples, round(pause, 2)]
            total += len(samples) / RATE + pause
            if total >= seconds:
                break
    pcm = stitch(pieces)
    return pcm[: round(seconds * RATE) * 2]


def dbfs(pcm: bytes) -> float:
    """RMS level of s16le audio in dBFS."""
    x = np.frombuffer(pcm, "<i2").astype(np.float64) / 32768.0
    return 20 * math.log10(max(float(np.sqrt(np.mean(x * x))), 1e-9))


class FrameCounter(logging.Handler):
    """Counts the client's WebSocket pings sent and pongs received (websockets' frame log)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.pings = 0
        self.pongs = 0
        self.longest_wait = 0.0
        """The longest a pong took (it travels behind the audio sent before its ping)."""
        self._sent: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if text.startswith("> PING"):
            self.pings += 1
            self._sent[text[len("> PING") :]] = record.created
        elif text.startswith("< PONG"):
            self.pongs += 1
            sent = self._sent.pop(text[len("< PONG") :], None)
            if sent is not None:
                self.longest_wait = max(self.longest_wait, record.created - sent)


class ServedStreams(logging.Handler):
    """The server's one record per stream (connection): the audio it received."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.audio_seconds: list[float] = []
        self.frames = 0

    def emit(self, record: logging.LogRecord) -> None:
        seconds = getattr(record, "audio_seconds", None)
        if seconds is not None:
            self.audio_seconds.append(float(seconds))
            self.frames += int(getattr(record, "frames", 0))


@dataclass
class Outcome:
    name: str
    pace: str
    seconds: float
    level: float
    connections: int = 0
    sent_seconds: float = 0.0
    served: list[float] = field(default_factory=list)
    pings: int = 0
    pongs: int = 0
    pong_wait: float = 0.0
    finals: int = 0
    partials: int = 0
    words: int = 0
    longest_quiet: float = 0.0
    wall: float = 0.0
    errors: list[str] = field(default_factory=list)
    stats: Any = None

    @property
    def ok(self) -> bool:
        return (
            self.connections == 1
            and len(self.served) == 1
            and self.sent_seconds <= TARGET_SENT * self.seconds
            and self.served[0] <= TARGET_SENT * self.seconds
        )


async def measure(engine: LocalEngineFactory, name: str, pcm: bytes, speed: float | None) -> Outcome:
    seconds = len(pcm) / (RATE * 2)
    out = Outcome(name, "unpaced" if speed is None else f"{speed:g}x", seconds, dbfs(pcm))
    frames, served = FrameCounter(), ServedStreams()
    ws_log, server_log = logging.getLogger("beluga_voice.aws.websocket"), logging.getLogger("beluga_voice.server")
    ws_log.addHandler(frames)
    ws_log.setLevel(logging.DEBUG)
    server_log.addHandler(served)
    server_log.setLevel(logging.INFO)
    try:
        async with serving(engine, partials=False) as server:
            stt = AWSTranscribeSTT(  # the provider's liveness defaults (pings, drain)
                region="us-east-1",
                credentials=(KEY.access_key_id, KEY.secret_access_key),
                language_code="en-US",
                endpoint_url=server.endpoint,
                max_speed=speed,
            )
            started = last = time.monotonic()
            async for result in stt.stream([pcm]):
                now = time.monotonic()
                out.longest_quiet = max(out.longest_quiet, now - last)
                last = now
                if result.is_partial:
                    out.partials += 1
                else:
                    out.finals += 1
                    out.words += len(result.text.split())
            out.longest_quiet = max(out.longest_quiet, time.monotonic() - last)
            out.wall = time.monotonic() - started
    finally:
        ws_log.removeHandler(frames)
        server_log.removeHandler(served)
    stats = stt.last_stream_stats
    assert stats is not None
    out.stats = stats
    out.connections = stats.connections
    out.sent_seconds = stats.sent_seconds
    out.errors = list(stats.errors)
    out.served = served.audio_seconds
    out.pings, out.pongs, out.pong_wait = frames.pings, frames.pongs, frames.longest_wait
    return out


def row(o: Outcome) -> list[object]:
    served = " + ".join(f"{s:.1f}" for s in o.served) or "-"
    return [
        o.name,
        f"{o.seconds:.1f} s",
        f"{o.level:.0f} dBFS",
        o.pace,
        f"{o.wall:.1f} s",
        o.connections,
        f"{o.sent_seconds:.1f} s ({o.sent_seconds / o.seconds:.3f}x)",
        f"{len(o.served)}: {served} s",
        f"{o.pings} / {o.pongs} ({o.pong_wait:.1f} s)",
        f"{o.finals} ({o.words} words)",
        o.partials,
        f"{o.longest_quiet:.1f} s",
        ", ".join(o.errors) or "-",
        "yes" if o.ok else "**no**",
    ]


async def main(speed: float | None) -> int:
    engine = LocalEngineFactory()
    await engine.preload()
    talk = short_conversation(DATA).pcm
    plan: list[tuple[str, bytes, float | None]] = [
        ("conversation", talk, 1.0),
        ("conversation", talk, speed),
        ("monologue", monologue(600.0), speed),
        ("music-like noise", music_like_noise(300.0, seed=1), speed),
        # Paced, so that no answer comes for minutes while audio flows (unpaced, the server reads it in seconds).
        ("music-like noise", music_like_noise(300.0, seed=1), NOISE_PACE),
    ]
    outcomes = []
    for name, pcm, pace in plan:
        o = await measure(engine, name, pcm, pace)
        print(
            f"{name} {o.pace}: {o.connections} connection(s), sent {o.sent_seconds:.1f} s of {o.seconds:.1f} s, "
            f"server {o.served}, pings {o.pings}/{o.pongs}, {o.finals} finals, wall {o.wall:.1f} s, "
            f"errors {o.errors}",
            flush=True,
        )
        outcomes.append(o)
    fast = "unpaced (as fast as the socket takes it)" if speed is None else f"at {speed:g}x real time"
    body = (
        "`python -m bench.quiet_service`: fault-free streams from the AWS provider (its defaults: a WebSocket "
        "ping every 5 s, 10 s to answer plus the audio sent ahead of real time, 10 s drain) to `beluga serve "
        "--partials off` on loopback (local engine), a service that answers each utterance only after it ends "
        "and sends nothing for noise. The conversation is real speech (a reader, a card player, 4 s of a "
        "phone call, pauses of 0.6-2.5 s), streamed once at real time and once " + fast + "; the monologue is the "
        "English Asterisk prompts (one reader), shuffled (seed 0) with pauses of 0.3-1.5 s and 2-3 s every "
        "3-6 prompts, cut at 10 minutes; the noise is seeded band-limited hiss under chords that change every "
        "0.5 s with a 2 Hz beat, loud, no words. The 10- and 5-minute streams run " + fast + ", the noise "
        f"once more at {NOISE_PACE:g}x (minutes of audio flowing with no answer at all): the policy is about "
        "liveness, not pace, and the pings column shows liveness still checked during the fast feed. "
        "A feed ahead of real time that the service leaves unanswered (the noise) is held by the provider's replay buffer: after 8 s without a final, audio flows at the pace the service reads it (its real-time length on the link), so both noise streams take about real time; nothing is dropped or sent twice. "
        "**Audio sent**: the client's `StreamStats.sent_seconds` (application audio, replays, keep-alive: what "
        "the service bills); **served**: the server's streams and the audio each received (its per-stream log "
        "record); **pings / pongs**: WebSocket pings the client sent and pongs it got (a pong travels behind the audio sent before its ping: on a fast feed it waits for the server to read that audio); **longest quiet**: the "
        "longest wall time without a message from the service while the stream was open. Target: 1 connection "
        f"and <= {TARGET_SENT}x audio sent on every stream.\n\n"
        + table(
            [
                "stream",
                "audio",
                "level",
                "pace",
                "wall",
                "connections",
                "audio sent",
                "served (streams: audio)",
                "pings / pongs (longest wait)",
                "finals",
                "partials",
                "longest quiet",
                "errors",
                "target met",
            ],
            [row(o) for o in outcomes],
        )
    )
    write_section("quiet-service", "A quiet service: connections and audio sent on fault-free streams", body)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        help="pace of the long streams and the second conversation run (default: unpaced)",
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.speed)))
