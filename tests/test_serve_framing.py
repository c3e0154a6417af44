"""`beluga serve` with the local engine gives every client the same finals, whatever the size of its
audio frames (20-200 ms) and its pace, over a real socket.

Unpaced clients are held back by the socket while the engine decodes (backpressure), so they run
one after another here: a connection held back for long answers no keepalive pings meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from beluga_voice.server import LocalEngineFactory, ServerConfig, TranscribeServer, serve_in_background
from framing_kit import (
    final_items,
    frames,
    paced,
    pcm_of,
    pyannote_call,
    serve_stream,
    short_conversation,
)

pytestmark = pytest.mark.model

FRAME_MS = (20, 50, 100, 200)


@pytest.fixture(scope="module")
def engine() -> LocalEngineFactory:
    return LocalEngineFactory()


@pytest.fixture
async def server(engine: LocalEngineFactory) -> AsyncIterator[TranscribeServer]:
    async with serve_in_background(
        ServerConfig(port=0, auth=False, engine=engine, idle_timeout=30.0)
    ) as running:
        yield running


async def test_the_call_gives_the_same_finals_for_every_frame_size_and_pace(
    server: TranscribeServer,
) -> None:
    """The pyannote call (two people, hardly a pause: utterances end on sentence cuts) with speaker
    labels: four clients sending as fast as the server takes it, in 20, 50, 100 and 200 ms frames,
    and one sending 20 ms frames at four times real time."""
    pcm = pcm_of(pyannote_call())
    replies = [await serve_stream(server, paced(frames(pcm, ms)), speakers=True) for ms in FRAME_MS[:-1]]
    replies += await asyncio.gather(  # the live client shares the engine with a fast one
        serve_stream(server, paced(frames(pcm, FRAME_MS[-1])), speakers=True),
        serve_stream(server, paced(frames(pcm, 20), speed=4.0), speakers=True),
    )

    assert [(r.exception, r.close_code) for r in replies] == [(None, 1000)] * len(replies)
    reference = final_items(replies[0].results)
    words = " ".join(text for text, *_ in reference).lower()
    assert {"hello", "chicago", "jersey", "yankee"} <= set(words.replace(".", " ").replace(",", " ").split())
    assert all(speaker is not None for *_, speaker in reference)
    for frame_ms, reply in zip([*FRAME_MS, "20 ms at 4x"], replies, strict=True):
        assert final_items(reply.results) == reference, f"finals differ with {frame_ms} frames"


async def test_a_conversation_gives_the_same_finals_for_every_frame_size(server: TranscribeServer) -> None:
    """Turns separated by pauses (utterances end on silence) from two speakers."""
    conversation = short_conversation()
    pcm = pcm_of(conversation)
    replies = [await serve_stream(server, paced(frames(pcm, ms))) for ms in FRAME_MS]

    assert all(r.exception is None and r.close_code == 1000 for r in replies)
    reference = final_items(replies[0].results)
    assert len([r for r in replies[0].results if r.is_final and r.text]) >= 5  # one final per turn, about
    assert {"dashwood", "queen"} <= set(replies[0].text.lower().replace(".", " ").split())
    for frame_ms, reply in zip(FRAME_MS, replies, strict=True):
        assert final_items(reply.results) == reference, f"finals differ with {frame_ms} ms frames"
