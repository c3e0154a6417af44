"""beluga serve with the real local engine and real speech, checked frame by frame.

One LocalEngine is loaded for the module and shared by every server, as `beluga serve` shares it
between streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from botocore.eventstream import EventStreamBuffer
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from beluga_voice.audio import read_audio
from beluga_voice.providers.aws_transcribe.messages import audio_event, end_of_stream
from beluga_voice.providers.local.model_files import default_model_path
from beluga_voice.server import LocalEngineFactory, ServerConfig, TranscribeServer, serve_in_background
from beluga_voice.server.testing import StreamReply, open_stream, read_reply
from beluga_voice.stt.model import TranscriptResult

pytestmark = pytest.mark.model

RATE = 16000
SPEED = 4.0  # audio sent at four times real time: fast tests, still a live stream to the engine
BASE = "language-code=en-US&media-encoding=pcm&sample-rate=16000"
LIBRIVOX = "librivox/sense_and_sensibility_01_austen_64kb-{}.wav"


@pytest.fixture(scope="module")
def engine() -> LocalEngineFactory:
    return LocalEngineFactory()


@pytest.fixture
async def server(engine: LocalEngineFactory) -> AsyncIterator[TranscribeServer]:
    async with serve_in_background(
        ServerConfig(port=0, auth=False, engine=engine, idle_timeout=5.0)
    ) as running:
        yield running


def pcm(data_dir: Path, name: str, rate: int = RATE) -> bytes:
    return read_audio(data_dir / name).convert(rate, 1).to_pcm16()


def silence(seconds: float, rate: int = RATE, channels: int = 1) -> bytes:
    return b"\x00\x00" * int(seconds * rate) * channels


async def send_paced(
    ws: ClientConnection, audio: bytes, bytes_per_second: int, chunk_ms: int = 100, speed: float = SPEED
) -> None:
    size = bytes_per_second * chunk_ms // 1000
    size -= size % 4
    for start in range(0, len(audio), size):
        await ws.send(audio_event(audio[start : start + size]))
        await asyncio.sleep(chunk_ms / 1000 / speed)


async def transcribe(
    server: TranscribeServer, query: str, audio: bytes, channels: int = 1, speed: float = SPEED
) -> StreamReply:
    async with open_stream(f"{server.url}?{query}") as ws:
        with contextlib.suppress(ConnectionClosed):  # a refused stream closes before the audio is sent
            await send_paced(ws, audio, RATE * 2 * channels, speed=speed)
            await ws.send(end_of_stream())
        return await read_reply(ws)


def by_result_id(results: list[TranscriptResult]) -> dict[str, list[TranscriptResult]]:
    grouped: dict[str, list[TranscriptResult]] = {}
    for result in results:
        grouped.setdefault(result.result_id, []).append(result)
    return grouped


def raw_items(reply: StreamReply) -> list[tuple[bool, dict[str, object]]]:
    """(is_partial, item) for every item, read with botocore's decoder and plain json."""
    items = []
    for frame in reply.raw:
        buffer = EventStreamBuffer()
        buffer.add_data(frame)
        (message,) = list(buffer)
        for result in json.loads(message.payload)["Transcript"]["Results"]:
            items += [(result["IsPartial"], item) for item in result["Alternatives"][0]["Items"]]
    return items


async def test_results_have_the_service_shape(server: TranscribeServer, data_dir: Path) -> None:
    reply = await transcribe(server, BASE, pcm(data_dir, LIBRIVOX.format("0880")) + silence(1.0))
    assert reply.exception is None and reply.close_code == 1000
    assert "young man" in reply.text.lower()
    for results in by_result_id(reply.results).values():
        assert [r.is_partial for r in results] == [True] * (len(results) - 1) + [False]
        ends = [r.end for r in results]
        assert ends == sorted(ends), "a segment's partials grow"
    items = raw_items(reply)
    assert any(item["Type"] == "punctuation" for _, item in items)
    assert all(
        ("Confidence" in item) != partial for partial, item in items if item["Type"] == "pronunciation"
    )
    assert not any("Speaker" in item or "Stable" in item for _, item in items)
    assert all(r.channel is None and r.language_code is None for r in reply.results)


async def test_finals_reach_clients_that_never_end_the_stream(
    server: TranscribeServer, data_dir: Path
) -> None:
    speech = pcm(data_dir, LIBRIVOX.format("0870")) + silence(1.5) + pcm(data_dir, LIBRIVOX.format("0880"))
    finals: list[TranscriptResult] = []
    async with open_stream(f"{server.url}?{BASE}") as ws:

        async def listen() -> None:
            reply_frames = StreamReply([], None, "")
            async for frame in ws:
                assert isinstance(frame, bytes)
                reply_frames.raw.append(frame)
                finals[:] = reply_frames.finals
                if any("young man" in f.text.lower() for f in finals):
                    return

        listener = asyncio.create_task(listen())
        await send_paced(ws, speech, RATE * 2)
        with contextlib.suppress(ConnectionClosed):
            for _ in range(100):  # trailing silence, as a live client sends it, until the finals are in
                if listener.done():
                    break
                await send_paced(ws, silence(0.2), RATE * 2)
        await asyncio.wait_for(listener, 10)
    # The client closed without the empty AudioEvent: what it has is what arrived while audio flowed.
    text = " ".join(f.text for f in finals).lower()
    assert "dashwood" in text and "young man" in text
    assert len(finals) >= 2


async def test_stable_words_never_change(server: TranscribeServer, data_dir: Path) -> None:
    query = f"{BASE}&enable-partial-results-stabilization=true&partial-results-stability=high"
    # Real time: partials come at the engine's own cadence, so words get the chance to repeat.
    reply = await transcribe(server, query, pcm(data_dir, LIBRIVOX.format("0870")) + silence(1.0), speed=1.0)
    saw_stable = False
    for results in by_result_id(reply.results).values():
        for index, result in enumerate(results):
            stable = [w for w in result.words if w.stable]
            saw_stable |= result.is_partial and bool(stable)
            for later in results[index + 1 :]:
                assert [(w.text, w.start) for w in later.words[: len(stable)]] == [
                    (w.text, w.start) for w in stable
                ]
        assert all(w.stable for w in results[-1].words)
    assert saw_stable


async def test_speaker_labels_on_a_two_speaker_call(server: TranscribeServer, data_dir: Path) -> None:
    call = pcm(data_dir, "pyannote/sample.wav")[6 * RATE * 2 : 20 * RATE * 2]  # both voices, then a pause
    reply = await transcribe(server, f"{BASE}&show-speaker-label=true", call)
    assert reply.exception is None and "texas" in reply.text.lower()
    items = raw_items(reply)
    spoken = [(partial, item) for partial, item in items if item["Type"] == "pronunciation"]
    assert all(isinstance(item.get("Speaker"), str) for partial, item in spoken if not partial)
    assert not any("Speaker" in item for partial, item in spoken if partial), "labels on completed segments"


async def test_channel_identification_transcribes_each_channel(
    server: TranscribeServer, data_dir: Path
) -> None:
    left = np.frombuffer(pcm(data_dir, LIBRIVOX.format("0880")) + silence(1.0), dtype="<i2")
    right = np.frombuffer(pcm(data_dir, "cards/005.wav") + silence(1.0), dtype="<i2")
    frames = max(len(left), len(right))
    stereo = np.zeros((frames, 2), dtype="<i2")
    stereo[: len(left), 0], stereo[: len(right), 1] = left, right
    query = f"{BASE}&enable-channel-identification=true&number-of-channels=2"
    reply = await transcribe(server, query, stereo.tobytes(), channels=2)
    assert reply.exception is None
    texts = {ch: " ".join(r.text for r in reply.finals if r.channel == ch).lower() for ch in ("ch_0", "ch_1")}
    assert "young man" in texts["ch_0"] and "young man" not in texts["ch_1"]
    assert "spades" in texts["ch_1"] and "spades" not in texts["ch_0"]
    assert {r.channel for r in reply.results} == {"ch_0", "ch_1"}


async def test_language_identification_with_an_english_only_model(data_dir: Path) -> None:
    # `beluga serve --model DIR` with an English-only model: it can only answer English.
    english_only = LocalEngineFactory(model_path=default_model_path())
    async with serve_in_background(
        ServerConfig(port=0, auth=False, engine=english_only, idle_timeout=5.0)
    ) as server:
        await _english_only_identification(server, data_dir)


async def _english_only_identification(server: TranscribeServer, data_dir: Path) -> None:
    query = "media-encoding=pcm&sample-rate=16000&identify-language=true&language-options=de-DE,en-GB"
    reply = await transcribe(server, query, pcm(data_dir, LIBRIVOX.format("0880")) + silence(1.0))
    assert reply.finals and all(r.language_code == "en-GB" for r in reply.results)
    scores = {s.language_code: s.score for s in reply.finals[0].language_scores}
    assert scores == {"en-GB": 1.0, "de-DE": 0.0}
    refused = await transcribe(
        server,
        "media-encoding=pcm&sample-rate=16000&identify-language=true&language-options=de-DE,fr-FR",
        silence(0.2),
    )
    assert refused.exception is not None and "English-only" in refused.exception.message


async def test_eight_kilohertz_telephone_audio(server: TranscribeServer, data_dir: Path) -> None:
    audio = pcm(data_dir, LIBRIVOX.format("0880"), rate=8000) + silence(1.0, rate=8000)
    async with open_stream(f"{server.url}?language-code=en-US&media-encoding=pcm&sample-rate=8000") as ws:
        await send_paced(ws, audio, 8000 * 2)
        await ws.send(end_of_stream())
        reply = await read_reply(ws)
    assert "young man" in reply.text.lower()


async def test_pii_parameters_are_accepted_and_ordinary_speech_is_left_alone(
    server: TranscribeServer, data_dir: Path
) -> None:
    audio = pcm(data_dir, LIBRIVOX.format("0880")) + silence(1.0)
    redacted = await transcribe(server, f"{BASE}&content-redaction-type=PII&pii-entity-types=ALL", audio)
    assert redacted.exception is None
    assert "young man" in redacted.text.lower() and "[PII]" not in redacted.text
    assert not any(r.entities for r in redacted.results)
