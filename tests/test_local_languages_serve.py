"""Languages through `beluga serve`: the handshake checks, results shaped like the service's, and our
AWS provider (AWSTranscribeSTT) identifying languages end to end over a real socket.

Real speech: Asterisk's IVR prompts (scripts/fetch-data.sh); real model: Whisper base for the
streams that identify languages, tiny.en for English, both loaded by the server's engine factory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from bench import language_data
from bench.language_data import Prompt, Switching, labelled_right, prompts, switching
from websockets.exceptions import ConnectionClosed

from beluga_voice.audio.pcm import Audio
from beluga_voice.providers.aws_transcribe import AWSTranscribeSTT
from beluga_voice.providers.aws_transcribe.messages import audio_event, end_of_stream
from beluga_voice.server import (
    Credential,
    CredentialStore,
    LocalEngineFactory,
    ServerConfig,
    TranscribeServer,
    serve_in_background,
)
from beluga_voice.server.testing import StreamReply, open_stream, read_reply

pytestmark = pytest.mark.model

KEY = Credential("AKID" + "LANGEXAMPLE00001", "languages/secret/for/the/local/server/0")
BASE = "media-encoding=pcm&sample-rate=16000"


@pytest.fixture(scope="module")
def voices() -> dict[str, list[Prompt]]:
    if not language_data.available():
        pytest.fail("Asterisk prompts missing: run ./scripts/fetch-data.sh (make test does it for you)")
    return {lang: prompts(lang, min_speech=3.0, limit=2, seed=3) for lang in ("fr", "en", "it")}


@pytest.fixture(scope="module")
def engine() -> LocalEngineFactory:
    return LocalEngineFactory()


@contextlib.asynccontextmanager
async def running(engine: LocalEngineFactory, **options: Any) -> AsyncIterator[TranscribeServer]:
    config = ServerConfig(port=0, engine=engine, idle_timeout=5.0, **options)
    async with serve_in_background(config) as server:
        yield server


async def send(server: TranscribeServer, query: str, audio: bytes) -> StreamReply:
    """One stream with the raw protocol, audio at four times real time."""
    async with open_stream(f"{server.url}?{query}") as ws:
        with contextlib.suppress(ConnectionClosed):  # a refused stream closes before the audio is sent
            for start in range(0, len(audio), 3200):
                await ws.send(audio_event(audio[start : start + 3200]))
                await asyncio.sleep(0.025)
            await ws.send(end_of_stream())
        return await read_reply(ws)


async def test_the_handshake_refuses_language_settings_it_cannot_serve(engine: LocalEngineFactory) -> None:
    refusals = {
        # the service's own rules, worded as the service words them
        "identify-language=true&language-options=fr-FR": "at least two language options",
        "identify-language=true&language-options=en-US,en-GB": "one dialect per language",
        "identify-language=true&language-options=en-US,fr-FR&preferred-language=it-IT": (
            "PreferredLanguage must be one of the LanguageOptions"
        ),
        "language-code=fr-FR&identify-language=true&language-options=en-US,fr-FR": "Only one of",
        "language-code=en-US&language-options=en-US,fr-FR": "LanguageOptions can only be used with",
        # the engine's own limit: Whisper has no Zulu; the answer names what it can transcribe
        "identify-language=true&language-options=en-US,zu-ZA": "zu-ZA are not supported",
        "language-code=zu-ZA": "Supported languages: [en-US, en-GB, es-US",
    }
    async with running(engine, auth=False) as server:
        for query, fragment in refusals.items():
            reply = await send(server, f"{BASE}&{query}", b"\0\0" * 1600)
            assert reply.exception is not None, query
            assert reply.exception.name == "BadRequestException" and fragment in reply.exception.message, (
                query,
                reply.exception.message,
            )


def provider(server: TranscribeServer, **options: Any) -> AWSTranscribeSTT:
    return AWSTranscribeSTT(
        region="us-east-1",
        endpoint_url=server.endpoint,
        credentials=(KEY.access_key_id, KEY.secret_access_key),
        max_speed=4.0,
        drain_timeout=30.0,
        **options,
    )


def audio(recording: Switching) -> Audio:
    return Audio(np.concatenate([recording.samples, np.zeros(16000, np.float32)])[:, None], 16000)


async def test_the_aws_provider_identifies_the_language_through_serve(
    engine: LocalEngineFactory, voices: dict[str, list[Prompt]]
) -> None:
    italian = switching([voices["it"]])
    async with running(engine, credentials=CredentialStore([KEY])) as server:
        stt = provider(
            server,
            identify_language=True,
            language_options=["en-US", "fr-FR", "it-IT"],
            preferred_language="en-US",
        )
        transcript = await stt.transcribe_full(audio(italian))
        # identify-multiple-languages: each segment its own language, scored as the service does
        mixed = switching([voices["fr"][:1], voices["en"][:1], voices["it"][:1]])
        options = ["fr-CA", "en-US", "it-IT"]
        multi = provider(server, identify_multiple_languages=True, language_options=options)
        labelled = await multi.transcribe_full(audio(mixed))
    assert transcript.language_code == "it-IT"
    assert transcript.results and all(r.language_code == "it-IT" for r in transcript.results)
    assert all(
        {s.language_code for s in r.language_scores} == {"en-US", "fr-FR", "it-IT"}
        for r in transcript.results
    )
    assert "cancelletto" in transcript.text.lower() or "conferenza" in transcript.text.lower(), (
        transcript.text
    )
    results = labelled.results
    assert results and all(r.language_code in set(options) for r in results)
    for result in results:  # the service's LanguageIdentification: every option scored, summing to 1
        scores = {s.language_code: s.score for s in result.language_scores}
        assert set(scores) == set(options) and abs(sum(scores.values()) - 1) < 0.01, scores
    share = labelled_right(mixed.stretches, [(r.start, r.end, r.language_code) for r in results])
    assert share >= 0.9, [(r.start, r.language_code, r.text) for r in results]
