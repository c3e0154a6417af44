"""FallbackSTT: a stream that continues on the local engine when the AWS provider fails for good,
with the same guarantees as a reconnection (real speech, `beluga serve` on loopback as "AWS")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from beluga_voice.errors import ConfigurationError, ServiceError
from beluga_voice.providers.aws_transcribe import ReconnectPolicy
from beluga_voice.providers.local import LocalSTT
from beluga_voice.server import FaultPlan, LocalEngineFactory
from beluga_voice.stt.fallback import FallbackSTT
from beluga_voice.stt.model import TranscriptResult, Word
from beluga_voice.stt.provider import ConnectionEvent
from reconnect_kit import Run, aws, reference_words, run_stream, serving, two_utterances
from reconnect_kit import assert_each_word_once as each_word_once

pytestmark = pytest.mark.model

SPEED = 2.0
GIVE_UP_FAST = ReconnectPolicy(max_attempts=2, base_delay=0.05)


@pytest.fixture(scope="module")
def engine() -> LocalEngineFactory:
    return LocalEngineFactory()


@pytest.fixture(scope="module")
def clip(data_dir: Path) -> bytes:
    return two_utterances(data_dir)


@pytest.fixture(scope="module")
def reference(engine: LocalEngineFactory, clip: bytes) -> list[Word]:
    return reference_words(engine, clip, max_speed=SPEED)


def local(engine: LocalEngineFactory) -> LocalSTT:
    return LocalSTT(engine=engine.engine, sample_rate=16000)


async def test_a_service_that_never_answers_falls_back_to_the_local_engine(
    engine: LocalEngineFactory, clip: bytes, reference: list[Word]
) -> None:
    async with serving(engine, faults=FaultPlan(refuse_status=503)) as server:
        stt = FallbackSTT([aws(server, reconnect=GIVE_UP_FAST), local(engine)])
        run = await run_stream(stt, clip)
    each_word_once(run, reference)
    (switch,) = [e for e in run.events if e.kind == "fallback"]
    assert isinstance(switch.error, ServiceError) and switch.detail == "aws -> local"
    assert stt.last_stream_stats is not None and stt.last_stream_stats.providers == ["aws", "local"]


async def test_a_stream_that_fails_midway_continues_where_it_was_without_loss_or_repeat(
    engine: LocalEngineFactory, clip: bytes, reference: list[Word]
) -> None:
    # The primary delivers the first sentence, then its connection drops and it may not reconnect.
    log: list[TranscriptResult | ConnectionEvent] = []
    run = Run()
    async with serving(engine, faults=FaultPlan(drop_after=2.6)) as server:
        stt = FallbackSTT([aws(server, max_speed=SPEED, reconnect=False), local(engine)])
        async for result in stt.stream([clip], on_connection_event=log.append):
            log.append(result)
            run.results.append(result)
    each_word_once(run, reference)
    switch = next(
        i for i, item in enumerate(log) if isinstance(item, ConnectionEvent) and item.kind == "fallback"
    )
    finals_before = [r for r in log[:switch] if isinstance(r, TranscriptResult) and r.is_final and r.words]
    finals_after = [r for r in log[switch:] if isinstance(r, TranscriptResult) and r.is_final and r.words]
    assert finals_before and finals_after
    event = log[switch]
    assert isinstance(event, ConnectionEvent) and event.detail == "aws -> local"
    # Only the audio after the last final (from the 100 ms chunk holding its end) went to the local
    # engine again: no overlap, as on an AWS reconnection.
    assert 0 < event.replayed_seconds <= len(clip) / 32000 - finals_before[-1].end + 0.1


async def test_the_applications_code_does_not_change(engine: LocalEngineFactory, clip: bytes) -> None:
    async with serving(engine, faults=FaultPlan(refuse_status=503)) as server:
        stt = FallbackSTT([aws(server, reconnect=GIVE_UP_FAST), local(engine)])
        text = await stt.transcribe(clip)  # the one-shot call every provider has
    assert "young man" in text.lower() and "amiable" in text.lower()


async def test_an_error_of_the_applications_audio_is_raised_not_a_reason_to_switch(
    engine: LocalEngineFactory, clip: bytes
) -> None:
    async def broken_microphone() -> AsyncIterator[bytes]:
        yield clip[:32000]
        raise OSError("microphone unplugged")

    async with serving(engine) as server:
        stt = FallbackSTT([aws(server), local(engine)])
        with pytest.raises(OSError, match="microphone unplugged"):
            async for _ in stt.stream(broken_microphone()):
                pass
    assert stt.last_stream_stats is not None and stt.last_stream_stats.providers == ["aws"]


async def test_when_every_provider_fails_the_last_error_is_raised(
    engine: LocalEngineFactory, clip: bytes
) -> None:
    async with (
        serving(engine, faults=FaultPlan(refuse_status=503)) as first,
        serving(engine, faults=FaultPlan(refuse_status=429)) as second,
    ):
        stt = FallbackSTT([aws(first, reconnect=GIVE_UP_FAST), aws(second, reconnect=GIVE_UP_FAST)])
        run = Run()
        with pytest.raises(ServiceError) as raised:
            await run_stream(stt, clip, into=run)
    assert raised.value.exception_name == "LimitExceededException"
    assert run.kinds().count("fallback") == 1


def test_providers_must_take_the_same_audio(engine: LocalEngineFactory) -> None:
    with pytest.raises(ConfigurationError, match="build local with sample_rate=8000"):
        FallbackSTT([LocalSTT(engine=engine.engine, sample_rate=8000), local(engine)])
    with pytest.raises(ConfigurationError, match="at least one provider"):
        FallbackSTT([])
