"""End to end: our AWS provider (AWSTranscribeSTT) against `beluga serve` over loopback, real speech.

The server verifies the provider's SigV4 URLs with its own credentials store; the model is the real
local engine. Failures are checked as the typed errors an application sees.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from beluga_voice.audio import Audio, read_audio
from beluga_voice.errors import (
    BelugaError,
    ConfigurationError,
    CredentialsError,
    RateLimitError,
    ServiceError,
)
from beluga_voice.providers.aws_transcribe import AWSTranscribeSTT
from beluga_voice.providers.aws_transcribe.messages import audio_event
from beluga_voice.server import (
    Credential,
    CredentialStore,
    FaultPlan,
    LocalEngineFactory,
    ServerConfig,
    TranscribeServer,
    serve_in_background,
)
from beluga_voice.server.testing import open_stream, presigned_url
from beluga_voice.stt.model import TranscriptResult

pytestmark = pytest.mark.model

KEY = Credential("AKIDE2EEXAMPLE000001", "e2e/secret/for/the/local/server/000000")
TEMP = Credential(
    "ASIAE2EEXAMPLE000002", "temporary/e2e/secret/0000000000000000", "IQoJb3JpZ2luX2VjEXAMPLE//token+="
)
UTTERANCE = "librivox/sense_and_sensibility_01_austen_64kb-0880.wav"


@pytest.fixture(scope="module")
def engine() -> LocalEngineFactory:
    return LocalEngineFactory()


@contextlib.asynccontextmanager
async def running(engine: LocalEngineFactory, **overrides: Any) -> AsyncIterator[TranscribeServer]:
    options: dict[str, Any] = {
        "port": 0,
        "credentials": CredentialStore([KEY, TEMP]),
        "engine": engine,
        "idle_timeout": 5.0,
    }
    options.update(overrides)
    async with serve_in_background(ServerConfig(**options)) as server:
        yield server


def provider(server: TranscribeServer, credential: Credential = KEY, **options: Any) -> AWSTranscribeSTT:
    secrets: tuple[str, ...] = (credential.access_key_id, credential.secret_access_key)
    if credential.session_token:
        secrets += (credential.session_token,)
    options.setdefault("language_code", "en-US")
    options.setdefault("max_speed", 4.0)
    options.setdefault("drain_timeout", 30.0)  # the shared test machine can be slow to finish decoding
    return AWSTranscribeSTT(region="us-east-1", endpoint_url=server.endpoint, credentials=secrets, **options)


def strict(server: TranscribeServer, credential: Credential = KEY, **options: Any) -> AWSTranscribeSTT:
    """One connection, no keep-alive: each failure surfaces as a single connection meets it
    (the provider's own reconnection is tested at length in test_reconnect_*.py and test_chaos_*.py)."""
    return provider(server, credential, reconnect=False, idle=None, **options)


def speech(data_dir: Path, name: str = UTTERANCE, pad: float = 1.0) -> Audio:
    audio = read_audio(data_dir / name).convert(16000, 1)
    return Audio(np.concatenate([audio.samples, np.zeros((int(pad * 16000), 1), np.float32)]), 16000)


async def test_transcribes_real_speech_with_temporary_credentials(
    engine: LocalEngineFactory, data_dir: Path
) -> None:
    async with running(engine) as server:
        transcript = await provider(server, TEMP).transcribe_full(speech(data_dir))
    assert "young man" in transcript.text.lower()
    assert all(w.confidence is not None for w in transcript.words if not w.is_punctuation)


async def test_diarization_labels_every_final_word(engine: LocalEngineFactory, data_dir: Path) -> None:
    async with running(engine) as server:
        # Diarization costs the engine more than plain decoding: allow it time after the audio ends.
        stt = provider(server, show_speaker_label=True, max_speed=2.0)
        call = read_audio(data_dir / "pyannote/sample.wav").convert(16000, 1)
        transcript = await stt.transcribe_full(Audio(call.samples[6 * 16000 : 20 * 16000], 16000))
    assert "texas" in transcript.text.lower()
    assert transcript.speakers and all(
        w.speaker is not None for w in transcript.words if not w.is_punctuation
    )


async def test_stabilization_reaches_the_provider(engine: LocalEngineFactory, data_dir: Path) -> None:
    results: list[TranscriptResult] = []
    async with running(engine) as server:
        stt = provider(
            server,
            enable_partial_results_stabilization=True,
            partial_results_stability="high",
            max_speed=1.0,
        )
        pcm, _ = stt.prepare(speech(data_dir, "librivox/sense_and_sensibility_01_austen_64kb-0870.wav"))
        async for result in stt.stream([pcm]):
            results.append(result)
    partial_flags = [w.stable for r in results if r.is_partial for w in r.words]
    assert partial_flags and all(flag is not None for flag in partial_flags) and any(partial_flags)
    assert all(w.stable for r in results if r.is_final for w in r.words)


async def test_channel_identification_keeps_channels_apart(
    engine: LocalEngineFactory, data_dir: Path
) -> None:
    left, right = speech(data_dir).samples[:, 0], speech(data_dir, "cards/005.wav").samples[:, 0]
    stereo = np.zeros((max(len(left), len(right)), 2), np.float32)
    stereo[: len(left), 0], stereo[: len(right), 1] = left, right
    async with running(engine) as server:
        stt = provider(server, enable_channel_identification=True, number_of_channels=2)
        transcript = await stt.transcribe_full(Audio(stereo, 16000))
    by_channel = {
        ch: " ".join(r.text for r in transcript.results if r.channel == ch).lower() for ch in ("ch_0", "ch_1")
    }
    assert "young man" in by_channel["ch_0"] and "spades" in by_channel["ch_1"]


async def test_language_identification_reports_the_language(
    engine: LocalEngineFactory, data_dir: Path
) -> None:
    async with running(engine) as server:
        stt = provider(
            server, language_code=None, identify_language=True, language_options=["en-US", "es-US"]
        )
        transcript = await stt.transcribe_full(speech(data_dir))
    assert transcript.language_code == "en-US"
    assert all(
        r.language_scores and r.language_scores[0].language_code == "en-US" for r in transcript.results
    )


# --- failures, as the application sees them -------------------------------------------------------


async def test_wrong_secret_is_a_credentials_error(engine: LocalEngineFactory, data_dir: Path) -> None:
    async with running(engine) as server:
        with pytest.raises(CredentialsError) as raised:
            await strict(server, Credential(KEY.access_key_id, "not-the-secret")).transcribe(speech(data_dir))
    assert "signature" in raised.value.message.lower()
    assert KEY.secret_access_key not in raised.value.message


async def test_unknown_key_is_a_credentials_error(engine: LocalEngineFactory, data_dir: Path) -> None:
    async with running(engine, rejection="http") as server:
        with pytest.raises(CredentialsError):
            await strict(server, Credential("AKIDNOBODY0000000000", "x")).transcribe(speech(data_dir))


async def test_expired_url_is_a_retryable_credentials_error(
    engine: LocalEngineFactory, data_dir: Path
) -> None:
    async with running(engine, clock=lambda: datetime.now(UTC) + timedelta(minutes=10)) as server:
        with pytest.raises(CredentialsError) as raised:
            await strict(server).transcribe(speech(data_dir))
    assert "expired" in raised.value.message.lower() and raised.value.retryable


async def test_parameters_the_server_cannot_serve_are_configuration_errors(
    engine: LocalEngineFactory, data_dir: Path
) -> None:
    async with running(engine) as server:
        stt = provider(
            server, language_code=None, identify_language=True, language_options=["en-US", "zu-ZA"]
        )
        with pytest.raises(ConfigurationError) as raised:
            await stt.transcribe(speech(data_dir))
    # Whisper has no Zulu: the answer names the languages the server can transcribe
    assert "zu-ZA" in raised.value.message and "fr-FR" in raised.value.message


async def test_idle_timeout_is_a_timeout_error(engine: LocalEngineFactory, data_dir: Path) -> None:
    pcm = speech(data_dir).to_pcm16()

    async def stalls() -> AsyncIterator[bytes]:
        yield pcm[:16000]
        await asyncio.sleep(3.0)
        yield pcm[16000:]

    async with running(engine, idle_timeout=1.0) as server:
        with pytest.raises(BelugaError) as raised:
            async for _ in strict(server).stream(stalls()):
                pass
    assert "no new audio was received for 1 seconds" in raised.value.message


async def test_concurrency_limit_is_a_rate_limit_error(engine: LocalEngineFactory, data_dir: Path) -> None:
    async with running(engine, max_streams=1) as server:
        url = presigned_url(
            server.endpoint, {"language-code": "en-US", "media-encoding": "pcm", "sample-rate": "16000"}, KEY
        )
        async with open_stream(url) as holder:
            await holder.send(audio_event(b"\x00" * 3200))
            with pytest.raises(RateLimitError) as raised:
                await strict(server).transcribe(speech(data_dir))
            await holder.close()
    assert raised.value.retryable and raised.value.exception_name == "LimitExceededException"


async def test_maximum_duration_is_a_rate_limit_error(engine: LocalEngineFactory, data_dir: Path) -> None:
    async with running(engine, max_stream_seconds=0.5) as server:
        with pytest.raises(RateLimitError):
            await strict(server, max_speed=1.0).transcribe(speech(data_dir))


async def test_a_second_stream_with_the_session_id_is_a_conflict_for_the_first(
    engine: LocalEngineFactory, data_dir: Path
) -> None:
    session = "5f0c1e2d-3b4a-4c5d-8e9f-0a1b2c3d4e5f"
    async with running(engine) as server:
        stt = strict(server, session_id=session, max_speed=1.0)
        first = asyncio.create_task(stt.transcribe(speech(data_dir)))
        await asyncio.sleep(1.0)
        params = {
            "language-code": "en-US",
            "media-encoding": "pcm",
            "sample-rate": "16000",
            "session-id": session,
        }
        async with open_stream(presigned_url(server.endpoint, params, KEY)) as second:
            with pytest.raises(ServiceError) as raised:
                await first
            await second.close()
    assert raised.value.exception_name == "ConflictException" and not raised.value.retryable


async def test_injected_service_failure_is_a_retryable_service_error(
    engine: LocalEngineFactory, data_dir: Path
) -> None:
    plan = FaultPlan(exception_after=0.5, exception_name="InternalFailureException")
    async with running(engine, faults=plan) as server:
        with pytest.raises(ServiceError) as raised:
            await strict(server, max_speed=1.0).transcribe(speech(data_dir))
    assert raised.value.exception_name == "InternalFailureException" and raised.value.retryable


async def test_dropped_connection_is_a_retryable_error(engine: LocalEngineFactory, data_dir: Path) -> None:
    async with running(engine, faults=FaultPlan(drop_after=0.5)) as server:
        with pytest.raises(BelugaError) as raised:
            await strict(server, max_speed=1.0).transcribe(speech(data_dir))
    assert raised.value.retryable


# --- resilience: the provider survives what the server injects -----------------------------------


@pytest.mark.parametrize(
    "plan",
    [
        FaultPlan(drop_after=1.5, streams=1),
        FaultPlan(exception_after=1.5, exception_name="InternalFailureException", streams=1),
        FaultPlan(exception_after=1.5, exception_name="ServiceUnavailableException", streams=1),
    ],
    ids=["dropped-tcp", "internal-failure", "service-unavailable"],
)
async def test_the_provider_recovers_from_injected_faults_without_losing_words(
    engine: LocalEngineFactory, data_dir: Path, plan: FaultPlan
) -> None:
    async with running(engine, faults=plan) as server:
        stt = provider(server, max_speed=1.0)
        transcript = await stt.transcribe_full(speech(data_dir))
    assert "young man" in transcript.text.lower()
    assert stt.last_stream_stats is not None and stt.last_stream_stats.reconnects >= 1


async def test_keepalive_outlives_the_idle_timeout(engine: LocalEngineFactory, data_dir: Path) -> None:
    first = speech(data_dir).to_pcm16()
    second = speech(data_dir, "librivox/sense_and_sensibility_01_austen_64kb-0930.wav").to_pcm16()

    async def with_a_pause() -> AsyncIterator[bytes]:
        yield first
        await asyncio.sleep(4.0)  # the application pauses longer than the server's 2 s idle timeout
        yield second

    async with running(engine, idle_timeout=2.0) as server:
        stt = provider(server)  # keep-alive silence starts after 1 s without audio
        text = " ".join([r.text async for r in stt.stream(with_a_pause()) if r.is_final]).lower()
    assert "young" in text and "amiable" in text
    assert stt.last_stream_stats is not None and stt.last_stream_stats.keepalive_seconds > 0
