"""Voice sessions through the AWS provider, against `beluga serve` over loopback.

The same two-reader dialogue as the local tests travels as signed WebSocket event streams to the
local Transcribe-compatible server (real engine behind it). A session written for Amazon
Transcribe sees the same turns, speakers and event order, and survives a dropped connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from beluga_voice.providers.aws_transcribe import AWSTranscribeSTT
from beluga_voice.server import (
    Credential,
    CredentialStore,
    FaultPlan,
    LocalEngineFactory,
    ServerConfig,
    TranscribeServer,
    serve_in_background,
)
from beluga_voice.session import ConnectionChanged, SessionConfig, VoiceSession, create_voice_session
from test_session_local import (
    Conversation,
    Recording,
    assert_events_in_order,
    assert_nothing_lost,
    assert_turns_follow,
    coverage,
    feed,
    normalise,
    record,
    two_reader_dialogue,
)

pytestmark = pytest.mark.model

KEY = Credential("AKIDSESSIONEXAMPLE01", "session/tests/secret/for/the/local/server/00")


@pytest.fixture(scope="module")
def engine() -> LocalEngineFactory:
    return LocalEngineFactory()


@pytest.fixture(scope="module")
def dialogue(data_dir: Path) -> Conversation:
    return two_reader_dialogue(data_dir)


@contextlib.asynccontextmanager
async def running(engine: LocalEngineFactory, **overrides: Any) -> AsyncIterator[TranscribeServer]:
    options: dict[str, Any] = {"port": 0, "credentials": CredentialStore([KEY]), "engine": engine}
    options.update(overrides)
    async with serve_in_background(ServerConfig(**options)) as server:
        yield server


def transcribe(server: TranscribeServer) -> AWSTranscribeSTT:
    """The provider as an application configures it for Amazon Transcribe, pointed at the server."""
    return AWSTranscribeSTT(
        region="us-east-1",
        endpoint_url=server.endpoint,
        credentials=(KEY.access_key_id, KEY.secret_access_key),
        language_code="en-US",
        show_speaker_label=True,
        max_speed=2.0,  # the provider paces faster-than-live audio; diarization needs the time
        drain_timeout=30.0,
    )


async def run_session(
    engine: LocalEngineFactory, dialogue: Conversation, config: SessionConfig | None, **server: Any
) -> tuple[VoiceSession, Recording]:
    async with running(engine, **server) as running_server:
        session = create_voice_session(transcribe(running_server), config)
        recording = record(session)
        await session.start()
        await feed(session, dialogue.pcm)
    return session, recording


@pytest.fixture(scope="module")
def sessions(
    engine: LocalEngineFactory, dialogue: Conversation
) -> tuple[tuple[VoiceSession, Recording], tuple[VoiceSession, Recording]]:
    """The dialogue through two servers side by side: a fault-free one, and one whose first TCP
    connection dies in the second utterance (``drop_after``)."""

    async def both() -> tuple[tuple[VoiceSession, Recording], tuple[VoiceSession, Recording]]:
        return await asyncio.gather(
            run_session(engine, dialogue, None),  # the guide's STT-only construction
            run_session(
                engine, dialogue, SessionConfig(keep_alive=False), faults=FaultPlan(drop_after=6.0, streams=1)
            ),
        )

    plain, dropped = asyncio.run(both())
    return plain, dropped


def test_a_session_over_transcribe_streaming_takes_the_same_turns(
    sessions: tuple[tuple[VoiceSession, Recording], tuple[VoiceSession, Recording]], dialogue: Conversation
) -> None:
    session, recording = sessions[0]
    assert_turns_follow(recording, dialogue)
    assert_events_in_order(recording)
    assert_nothing_lost(recording)
    kinds = [e.event.kind for e in recording.events if isinstance(e, ConnectionChanged)]
    assert kinds[0] == "connected"
    # The provider's stream counted its audio towards the session's usage (for cost estimates).
    assert session.usage.audio_seconds == pytest.approx(dialogue.duration, abs=0.2)
    assert session.usage.billed_seconds >= session.usage.audio_seconds


def test_a_dropped_connection_is_repaired_under_the_session_without_losing_turns(
    sessions: tuple[tuple[VoiceSession, Recording], tuple[VoiceSession, Recording]], dialogue: Conversation
) -> None:
    session, recording = sessions[1]
    kinds = [e.event.kind for e in recording.events if isinstance(e, ConnectionChanged)]
    assert "disconnected" in kinds and "reconnected" in kinds, kinds
    assert session.error is None
    turns = recording.user_turns
    said = " ".join(t.text for t in turns)
    for utterance in dialogue.utterances:
        assert coverage(utterance.words, said) >= 0.6, (utterance.words, said)
    words = [w for t in turns for w in t.words if not w.is_punctuation]
    assert all(a.start <= b.start for a, b in itertools.pairwise(words)), "time went backwards"
    assert normalise(said).count("spades") == 1  # the utterance cut by the drop came back once
    assert_nothing_lost(recording)
