"""AWSTranscribeSTT over a real socket against the fake Transcribe service (test_aws_fakes.py)."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from beluga_voice.audio import Audio, read_audio
from beluga_voice.errors import (
    AudioFormatError,
    BelugaError,
    ConfigurationError,
    CredentialsError,
    RateLimitError,
    ServiceError,
    StreamConnectionError,
    StreamTimeoutError,
    UnsupportedRegionError,
)
from beluga_voice.providers.aws_transcribe import AWSTranscribeSTT
from beluga_voice.stt import create_provider
from beluga_voice.stt.model import LanguageScore, TranscriptResult, Word
from beluga_voice.stt.provider import ConnectionEvent
from test_aws_fakes import (
    ACCESS_KEY,
    SECRET_KEY,
    SESSION_TOKEN,
    FakeConnection,
    FakeTranscribe,
    final,
)

CREDENTIALS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)


@pytest.fixture(scope="module")
def speech(data_dir: Path) -> bytes:
    """Real speech, 16 kHz mono s16le."""
    wav = sorted((data_dir / "librivox").glob("*.wav"))[0]
    return read_audio(wav).convert(16000).to_pcm16()


def aws(fake: FakeTranscribe, **kwargs: Any) -> AWSTranscribeSTT:
    # One connection, no keep-alive: these tests check what a single connection does (reconnection
    # has its own tests in test_reconnect_*.py).
    options: dict[str, Any] = {
        "credentials": CREDENTIALS,
        "max_speed": None,
        "drain_timeout": 5.0,
        "reconnect": False,
        "idle": None,
    }
    options.update(kwargs)
    return AWSTranscribeSTT(endpoint_url=fake.url, **options)


def pieces(data: bytes, seed: int = 7) -> Iterator[bytes]:
    """Audio cut into pieces of random sizes, as applications produce it."""
    rng = random.Random(seed)
    position = 0
    while position < len(data):
        size = rng.choice([1, 7, 320, 640, 1111, 5000, 40000])
        yield data[position : position + size]
        position += size


async def collect(
    stream: AsyncIterator[TranscriptResult], into: list[TranscriptResult] | None = None
) -> list[TranscriptResult]:
    out = [] if into is None else into
    async for result in stream:
        out.append(result)
    return out


async def test_partials_grow_into_a_final_with_words_stability_and_confidences(speech: bytes) -> None:
    async def script(conn: FakeConnection) -> None:
        await conn.audio(0.5)
        await conn.results(
            TranscriptResult("seg-1", True, 0.1, 0.5, "the", (Word("the", 0.1, 0.3, stable=True),))
        )
        await conn.audio(1.0)
        await conn.results(
            TranscriptResult(
                "seg-1",
                True,
                0.1,
                0.9,
                "the amazon",
                (Word("the", 0.1, 0.3, stable=True), Word("amazon", 0.3, 0.9, stable=False)),
            )
        )
        await conn.until_end()
        await conn.results(
            TranscriptResult(
                "seg-1",
                False,
                0.1,
                0.95,
                "The Amazon.",
                (
                    Word("The", 0.1, 0.3, confidence=0.99, stable=True),
                    Word("Amazon", 0.3, 0.95, confidence=0.87, stable=True),
                    Word(".", 0.95, 0.95, stable=True, is_punctuation=True),
                ),
            )
        )

    async with FakeTranscribe(script) as fake:
        results = await collect(aws(fake).stream(pieces(speech)))
        received = fake.connections[0]

    assert [(r.result_id, r.is_partial) for r in results] == [
        ("seg-1", True),
        ("seg-1", True),
        ("seg-1", False),
    ]
    assert results[1].stable_text == "the"
    assert results[2].text == "The Amazon."
    assert [w.confidence for w in results[2].words] == [0.99, 0.87, None]
    # The service got every sample, in uniform 100 ms chunks, then one empty AudioEvent, never text.
    assert received.audio == speech
    assert {len(c) for c in received.chunks[:-1]} == {3200}
    assert 0 < len(received.chunks[-1]) <= 3200
    assert received.ended and received.text_frames == 0 and received.frames_after_end == 0


async def test_finals_sent_after_the_end_of_audio_are_drained_before_the_stream_ends(speech: bytes) -> None:
    async def script(conn: FakeConnection) -> None:
        await conn.until_end()
        await asyncio.sleep(0.3)
        await conn.results(final("first sentence", 0.0, 1.0))
        await asyncio.sleep(0.2)
        await conn.results(final("last words", 1.0, 2.0))

    async with FakeTranscribe(script) as fake:
        text = await aws(fake).transcribe(speech)
    assert text == "first sentence last words"


async def test_speaker_labels_are_requested_and_reach_the_transcript(speech: bytes) -> None:
    async def script(conn: FakeConnection) -> None:
        await conn.until_end()
        words = (
            Word("hello", 0.0, 0.4, 0.9, speaker="0"),
            Word("there", 0.4, 0.8, 0.9, speaker="0"),
            Word("hi", 1.0, 1.3, 0.8, speaker="1"),
        )
        await conn.results(TranscriptResult("a", False, 0.0, 1.3, "hello there hi", words))

    async with FakeTranscribe(script) as fake:
        transcript = await aws(fake, show_speaker_label=True).transcribe_full(speech)
        assert fake.connections[0].params["show-speaker-label"] == "true"
    assert transcript.speakers == ["0", "1"]
    assert [(s.speaker, s.text) for s in transcript.segments()] == [("0", "hello there"), ("1", "hi")]


async def test_language_identification_is_requested_and_its_scores_are_kept(speech: bytes) -> None:
    scores = (LanguageScore("es-US", 0.9), LanguageScore("en-US", 0.1))

    async def script(conn: FakeConnection) -> None:
        await conn.until_end()
        await conn.results(final("hola amigos", 0.0, 1.0, language_code="es-US", language_scores=scores))

    async with FakeTranscribe(script) as fake:
        provider = aws(
            fake, identify_language=True, language_options=["en-US", "es-US"], preferred_language="es-US"
        )
        transcript = await provider.transcribe_full(speech)
        params = fake.connections[0].params
    assert params["identify-language"] == "true"
    assert params["language-options"] == "en-US,es-US"
    assert params["preferred-language"] == "es-US"
    assert "language-code" not in params
    assert transcript.language_code == "es-US"
    assert transcript.results[0].language_scores == scores


async def test_channel_identification_streams_two_channels_and_maps_channel_ids(speech: bytes) -> None:
    mono = np.frombuffer(speech, dtype="<i2")
    stereo = np.stack([mono, mono[::-1]], axis=1).astype("<i2").tobytes()

    async def script(conn: FakeConnection) -> None:
        await conn.until_end()
        await conn.results(final("left", 0.0, 0.5, channel="ch_0"), final("right", 0.2, 0.6, channel="ch_1"))

    async with FakeTranscribe(script) as fake:
        provider = aws(fake, enable_channel_identification=True)
        assert provider.channels == 2
        results = await collect(provider.stream(pieces(stereo)))
        received = fake.connections[0]
        with pytest.raises(AudioFormatError, match="two-channel"):
            await provider.transcribe(Audio.from_pcm16(speech, 16000))
    assert received.params["number-of-channels"] == "2"
    assert received.audio == stereo
    assert {len(c) for c in received.chunks[:-1]} == {6400}  # 100 ms of two channels
    assert [(r.channel, r.text) for r in results] == [("ch_0", "left"), ("ch_1", "right")]


async def test_the_declared_sample_rate_is_the_real_one(data_dir: Path) -> None:
    """A 16 kHz recording sent to an 8 kHz session is resampled, never mislabelled."""
    async with FakeTranscribe() as fake:
        text = await aws(fake, sample_rate=8000).transcribe(data_dir / "pyannote" / "sample.wav")
        received = fake.connections[0]
    duration = read_audio(data_dir / "pyannote" / "sample.wav").duration
    assert received.params["sample-rate"] == "8000"
    assert float(text) == pytest.approx(duration, abs=0.002)
    assert {len(c) for c in received.chunks[:-1]} == {1600}


@pytest.mark.parametrize(
    ("name", "message", "kind", "retryable"),
    [
        ("LimitExceededException", "You have reached your concurrent stream limit.", RateLimitError, True),
        ("InternalFailureException", "We had an internal problem.", ServiceError, True),
        ("ServiceUnavailableException", "Service is busy.", ServiceError, True),
        ("BadRequestException", "Your request timed out because no new audio was received for 15 seconds.", StreamTimeoutError, True),
        ("ConflictException", "A stream with this session id is in progress.", ServiceError, False),
        ("BadRequestException", "1 validation error detected: Value '4000' at 'mediaSampleRateHertz'", ConfigurationError, False),
    ],
)  # fmt: skip
async def test_exception_frames_end_the_stream_with_typed_errors_after_earlier_results(
    speech: bytes, name: str, message: str, kind: type[BelugaError], retryable: bool
) -> None:
    async def script(conn: FakeConnection) -> None:
        await conn.audio(0.3)
        await conn.results(final("before", 0.0, 0.3))
        await conn.exception(name, message)

    got: list[TranscriptResult] = []
    async with FakeTranscribe(script) as fake:
        with pytest.raises(kind) as caught:
            await collect(aws(fake).stream(pieces(speech)), got)
    assert type(caught.value) is kind
    assert caught.value.retryable is retryable
    assert message in str(caught.value)
    assert [r.text for r in got] == ["before"]


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (403, CredentialsError, False),
        (429, RateLimitError, True),
        (500, ServiceError, True),
        (503, ServiceError, True),
    ],
)
async def test_refused_upgrades_are_typed_errors(
    speech: bytes, status: int, kind: type[BelugaError], retryable: bool
) -> None:
    async with FakeTranscribe(refuse_status=status) as fake:
        with pytest.raises(kind) as caught:
            await aws(fake).transcribe(speech)
    assert caught.value.retryable is retryable


@pytest.mark.parametrize("where", ["upgrade", "frame"])
async def test_wrong_credentials_are_a_credentials_error_that_names_the_fix(
    speech: bytes, where: Any
) -> None:
    wrong = (ACCESS_KEY, "not-the-secret-key-0123456789abcdefghijk", None)
    async with FakeTranscribe(auth_failure=where) as fake:
        with pytest.raises(CredentialsError) as caught:
            await aws(fake, credentials=wrong).transcribe(speech)
    message = str(caught.value)
    assert "transcribe:StartStreamTranscriptionWebSocket" in message
    assert "does not match" in message
    assert wrong[1] not in message and caught.value.retryable is False


def test_a_region_without_streaming_is_refused_before_any_connection() -> None:
    with pytest.raises(UnsupportedRegionError) as caught:
        AWSTranscribeSTT(region="eu-north-1", credentials=CREDENTIALS)
    assert "'eu-north-1'" in str(caught.value) and "eu-west-1" in str(caught.value)


async def test_a_service_that_closes_mid_stream_is_a_retryable_connection_error(speech: bytes) -> None:
    async def script(conn: FakeConnection) -> None:
        await conn.audio(0.2)
        await conn.close(1000)

    endless = (speech for _ in range(10_000))
    async with FakeTranscribe(script) as fake:
        with pytest.raises(StreamConnectionError) as caught:
            await collect(aws(fake, max_speed=20.0).stream(endless))
    assert caught.value.retryable and "before the end of the audio" in str(caught.value)


async def test_a_service_that_never_closes_after_the_end_is_given_up_on(speech: bytes) -> None:
    async def script(conn: FakeConnection) -> None:
        await conn.until_end()
        await conn.results(final("kept", 0.0, 1.0))
        await conn.ws.wait_closed()

    got: list[TranscriptResult] = []
    async with FakeTranscribe(script) as fake:
        with pytest.raises(StreamTimeoutError, match="did not close"):
            await collect(aws(fake, drain_timeout=0.3).stream([speech]), got)
    assert [r.text for r in got] == ["kept"]


async def test_credentials_are_resolved_again_for_every_connection(
    speech: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFIRSTKEY00000001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    async with FakeTranscribe() as fake:
        provider = AWSTranscribeSTT(endpoint_url=fake.url, max_speed=None)  # botocore's default chain
        await provider.transcribe(speech[:3200])
        rotated = "rotated-secret-key/0123456789abcdefghij"
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSECONDKEY0000002")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", rotated)
        fake.secret_key = rotated
        await provider.transcribe(speech[:3200])
    first, second = (c.params["X-Amz-Credential"].split("/")[0] for c in fake.connections)
    assert (first, second) == ("AKIDFIRSTKEY00000001", "AKIDSECONDKEY0000002")
    assert fake.connections[0].params["session-id"] != fake.connections[1].params["session-id"]


async def test_the_session_token_is_sent_and_signed(speech: bytes) -> None:
    async with FakeTranscribe() as fake:
        await aws(fake).transcribe(speech[:6400])
        assert fake.connections[0].params["X-Amz-Security-Token"] == SESSION_TOKEN
    # The fake verified the signature over every parameter, the token included (see test_aws_signing).


async def test_no_secret_reaches_logs_errors_or_reprs(
    speech: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    async with FakeTranscribe() as fake:
        provider = aws(fake)
        texts.append(repr(provider))
        await provider.transcribe(speech[:6400])
        signature = fake.connections[0].params["X-Amz-Signature"]
        fake.secret_key = "other"
        try:
            await provider.transcribe(speech[:6400])
        except CredentialsError as exc:
            texts += [str(exc), repr(exc)]
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("beluga_voice"))
    texts.append(ours)
    assert "stream-transcription-websocket" in ours, "the debug log should show the connection"
    everything = "\n".join(texts)
    for secret in (SECRET_KEY, SESSION_TOKEN, signature):
        assert secret not in everything


async def test_connection_events_report_the_services_ids(speech: bytes) -> None:
    events: list[ConnectionEvent] = []
    async with FakeTranscribe() as fake:
        await collect(aws(fake).stream([speech[:3200]], on_connection_event=events.append))
        session_id = fake.connections[0].params["session-id"]
    assert [e.kind for e in events] == ["connected", "closed"]
    assert f"session-id={session_id}" in events[0].detail and "request-id=req-" in events[0].detail


async def test_a_failed_stream_reports_the_disconnect_with_its_error(speech: bytes) -> None:
    async def script(conn: FakeConnection) -> None:
        await conn.exception("ServiceUnavailableException", "try later")

    events: list[ConnectionEvent] = []
    async with FakeTranscribe(script) as fake:
        with pytest.raises(ServiceError):
            await collect(aws(fake).stream([speech], on_connection_event=events.append))
    assert [e.kind for e in events] == ["connected", "disconnected"]
    assert isinstance(events[1].error, ServiceError) and events[1].error.retryable


async def test_a_consumer_that_stops_early_closes_the_connection(speech: bytes) -> None:
    async def script(conn: FakeConnection) -> None:
        await conn.audio(0.2)
        await conn.results(final("enough", 0.0, 0.2))
        await conn.until_end()

    endless = (speech for _ in range(10_000))
    async with FakeTranscribe(script) as fake:
        stream = aws(fake, max_speed=20.0).stream(endless)
        async for _result in stream:
            break
        await stream.aclose()  # type: ignore[attr-defined]
        received = fake.connections[0]
        for _ in range(100):
            if received.client_closed:
                break
            await asyncio.sleep(0.02)
    assert received.client_closed and not received.ended


async def test_an_audio_source_that_fails_surfaces_its_own_error(speech: bytes) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield speech[:3200]
        raise ValueError("microphone unplugged")

    async with FakeTranscribe() as fake:
        with pytest.raises(ValueError, match="microphone unplugged"):
            await collect(aws(fake).stream(broken()))


async def test_audio_is_never_sent_faster_than_max_speed(speech: bytes) -> None:
    one_second = speech[:32000]
    async with FakeTranscribe() as fake:
        started = time.monotonic()
        await aws(fake, max_speed=5.0).transcribe(one_second)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.9 / 5.0  # the last chunk leaves no earlier than its media time / speed


async def test_the_endpoint_environment_variable_points_the_provider_elsewhere(
    speech: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeTranscribe() as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_TRANSCRIBE_STREAMING", fake.url)
        provider = create_provider("aws", credentials=CREDENTIALS, max_speed=None)
        assert isinstance(provider, AWSTranscribeSTT)
        assert float(await provider.transcribe(speech[:16000])) == pytest.approx(0.5)
        assert len(fake.connections) == 1
