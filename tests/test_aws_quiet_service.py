"""Fault-free streams against a service that answers only at the end of utterances (`beluga serve
--partials off`, real engine, real sockets): one connection, and the audio sent once. A connection is
replaced when it is dead (pings unanswered), never because no transcript arrived - music, noise or a
long utterance legitimately get no answer for a long time."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from beluga_voice.providers.aws_transcribe import AWSTranscribeSTT
from beluga_voice.server import LocalEngineFactory
from reconnect_kit import RATE, Run, aws, music_like_noise, run_stream, serving, short_conversation

pytestmark = pytest.mark.model

SENT_AT_MOST = 1.01
"""Audio sent (what the service bills) over audio in, on a fault-free stream."""


@pytest.fixture(scope="module")
def engine() -> LocalEngineFactory:
    return LocalEngineFactory()


class ServedAudio(logging.Handler):
    """The audio each stream delivered to the server, from its one log line per stream."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if line.startswith("stream session="):
            self.seconds.append(float(re.search(r" audio=([\d.]+)s", line).group(1)))  # type: ignore[union-attr]


@dataclass
class QuietStream:
    pcm: bytes
    stt: AWSTranscribeSTT
    run: Run
    served: list[float]
    """What the server received on every stream of the run (this one's among them)."""


def assert_one_connection_audio_once(stream: QuietStream) -> list[str]:
    stats = stream.stt.last_stream_stats
    seconds = len(stream.pcm) / (RATE * 2)
    assert stats is not None and stats.errors == [] and stats.connections == 1, stats
    assert stream.run.kinds() == ["connected", "closed"]
    assert all(not r.is_partial for r in stream.run.results)  # the server really was quiet
    assert stats.audio_seconds == pytest.approx(seconds)
    assert stats.sent_seconds <= SENT_AT_MOST * seconds
    # Counted on the other side of the socket too: what the service received (and would bill), once.
    assert [s for s in stream.served if s == pytest.approx(seconds, abs=0.01)] == [
        pytest.approx(seconds, abs=0.01)
    ]
    return [w.text for w in stream.run.words]


async def quiet_streams(engine: LocalEngineFactory, speed: float, *recordings: bytes) -> list[QuietStream]:
    """Each recording on its own stream, side by side, to one quiet server; the provider's liveness
    defaults (pings every 5 s, 10 s to answer)."""
    served = ServedAudio()
    log = logging.getLogger("beluga_voice.server")
    level = log.level
    log.addHandler(served)
    log.setLevel(logging.INFO)
    try:
        async with serving(engine, partials=False) as server:
            stts = [aws(server, max_speed=speed) for _ in recordings]
            # A stream that reconnects forever (say, starved until the service ends it) fails here.
            async with asyncio.timeout(120 + max(map(len, recordings)) / (RATE * 2 * speed) * 4):
                runs = await asyncio.gather(
                    *(run_stream(stt, pcm) for stt, pcm in zip(stts, recordings, strict=True))
                )
    finally:
        log.removeHandler(served)
        log.setLevel(level)
    assert len(served.seconds) == len(recordings), served.seconds  # one connection each, nothing more
    return [
        QuietStream(pcm, stt, run, served.seconds)
        for pcm, stt, run in zip(recordings, stts, runs, strict=True)
    ]


@pytest.fixture(scope="module")
def talk_and_noise(engine: LocalEngineFactory, data_dir: Path) -> list[QuietStream]:
    """A 52 s conversation and a minute of music-like noise at four times real time, side by side."""
    return asyncio.run(quiet_streams(engine, 4.0, short_conversation(data_dir).pcm, music_like_noise(60.0)))


def test_a_conversation_with_finals_only_keeps_one_connection_and_sends_the_audio_once(
    talk_and_noise: list[QuietStream],
) -> None:
    words = assert_one_connection_audio_once(talk_and_noise[0])
    assert len(words) > 60  # the finals came, at the end of each utterance


def test_a_minute_of_music_like_noise_that_gets_no_answer_keeps_one_connection(
    talk_and_noise: list[QuietStream],
) -> None:
    # Loud enough to count as "speech" for any energy rule (about -17 dBFS), transcribed as nothing:
    # 15 s of wall time without a single message from the service while audio flows.
    noise = talk_and_noise[1]
    assert assert_one_connection_audio_once(noise) == []
    assert noise.run.seconds >= 14.0  # paced: the silence really lasted longer than any old watchdog


@pytest.mark.slow
async def test_five_minutes_of_music_like_noise_keep_one_connection(engine: LocalEngineFactory) -> None:
    (noise,) = await quiet_streams(engine, 8.0, music_like_noise(300.0, seed=1))
    assert assert_one_connection_audio_once(noise) == []
