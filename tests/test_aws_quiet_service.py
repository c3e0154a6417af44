"""Fault-free streams against a service that answers only at the end of utterances (`beluga serve
--partials off`, real engine, real sockets): one connection, and the audio sent once. A connection is
replaced when it is dead (pings unanswered), never because no transcript arrived - music, noise or a
long utterance legitimately get no answer for a long time."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from beluga_voice.server import LocalEngineFactory
from reconnect_kit import RATE, aws, music_like_noise, run_stream, serving, short_conversation

pytestmark = pytest.mark.model

SENT_AT_MOST = 1.01
"""Audio sent (what the service bills) over audio in, on a fault-free stream."""


@pytest.fixture(scope="module")
def engine() -> LocalEngineFactory:
    return LocalEngineFactory()


def served_audio_seconds(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The audio each stream delivered to the server, from its one log line per stream."""
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stream session=")]
    return [float(re.search(r" audio=([\d.]+)s", line).group(1)) for line in lines]  # type: ignore[union-attr]


async def assert_one_connection_audio_once(
    engine: LocalEngineFactory, pcm: bytes, speed: float, caplog: pytest.LogCaptureFixture
) -> list[str]:
    caplog.set_level(logging.INFO, logger="beluga_voice.server")
    async with serving(engine, partials=False) as server:
        stt = aws(server, max_speed=speed)  # the provider's liveness defaults
        run = await run_stream(stt, pcm)
    stats = stt.last_stream_stats
    seconds = len(pcm) / (RATE * 2)
    assert stats is not None and stats.errors == [] and stats.connections == 1, stats
    assert run.kinds() == ["connected", "closed"]
    assert all(not r.is_partial for r in run.results)  # the server really was quiet
    assert stats.audio_seconds == pytest.approx(seconds)
    assert stats.sent_seconds <= SENT_AT_MOST * seconds
    # Counted on the other side of the socket too: what the service received (and would bill).
    assert served_audio_seconds(caplog) == [pytest.approx(seconds, abs=0.01)]
    return [w.text for w in run.words]


async def test_a_conversation_with_finals_only_keeps_one_connection_and_sends_the_audio_once(
    engine: LocalEngineFactory, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    talk = short_conversation(data_dir)
    words = await assert_one_connection_audio_once(engine, talk.pcm, 4.0, caplog)
    assert len(words) > 60  # the finals came, at the end of each utterance


async def test_a_minute_of_music_like_noise_that_gets_no_answer_keeps_one_connection(
    engine: LocalEngineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # Loud enough to count as "speech" for any energy rule (about -17 dBFS), transcribed as nothing:
    # 15 s of wall time without a single message from the service while audio flows.
    words = await assert_one_connection_audio_once(engine, music_like_noise(60.0), 4.0, caplog)
    assert words == []


@pytest.mark.slow
async def test_five_minutes_of_music_like_noise_keep_one_connection(
    engine: LocalEngineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    words = await assert_one_connection_audio_once(engine, music_like_noise(300.0, seed=1), 8.0, caplog)
    assert words == []
