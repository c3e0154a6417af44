"""`beluga serve` with the local engine gives every client the same finals, whatever the size of its
audio frames (20-200 ms) and its pace, over a real socket.

Unpaced clients are held back by the socket while the engine decodes (backpressure); the server sends
no pings of its own (a held-back client's pong would wait behind its audio), so clients that share
the engine run side by side, as a server's clients do, and each must still get the same finals.
The default run compares the extremes (20 and 200 ms, unpaced and live); the slow run every size.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from beluga_voice.server import LocalEngineFactory, ServerConfig, TranscribeServer, serve_in_background
from framing_kit import (
    Recording,
    final_items,
    frames,
    paced,
    pcm_of,
    pyannote_call,
    serve_stream,
    short_conversation,
)

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def engine() -> LocalEngineFactory:
    return LocalEngineFactory()


@pytest.fixture
async def server(engine: LocalEngineFactory) -> AsyncIterator[TranscribeServer]:
    async with serve_in_background(
        ServerConfig(port=0, auth=False, engine=engine, idle_timeout=30.0)
    ) as running:
        yield running


def _words(text: str) -> set[str]:
    return set(text.lower().replace(".", " ").replace(",", " ").replace("?", " ").split())


async def test_the_call_gives_the_same_finals_for_any_frame_size_and_pace(server: TranscribeServer) -> None:
    """The pyannote call (two people, hardly a pause: utterances end on sentence cuts) with speaker
    labels: 20 ms and 200 ms frames as fast as the server takes them, and 20 ms frames at four
    times real time, all three sharing the engine at once."""
    pcm = pcm_of(pyannote_call())
    first, coarse, live = await asyncio.gather(
        serve_stream(server, paced(frames(pcm, 20)), speakers=True),
        serve_stream(server, paced(frames(pcm, 200)), speakers=True),
        serve_stream(server, paced(frames(pcm, 20), speed=4.0), speakers=True),
    )

    replies = [first, coarse, live]
    assert [(r.exception, r.close_code) for r in replies] == [(None, 1000)] * 3
    reference = final_items(first.results)
    assert {"hello", "chicago", "jersey", "yankee"} <= _words(first.text)
    assert all(speaker is not None for *_, speaker in reference)
    assert final_items(coarse.results) == reference, "200 ms frames changed the finals"
    assert final_items(live.results) == reference, "a live client at 4x got other finals"


async def test_a_conversation_gives_the_same_finals_for_any_frame_size(server: TranscribeServer) -> None:
    """Turns separated by pauses (utterances end on silence), two speakers."""
    pcm = pcm_of(short_conversation())
    replies = await asyncio.gather(*(serve_stream(server, paced(frames(pcm, ms))) for ms in (20, 200)))

    assert [(r.exception, r.close_code) for r in replies] == [(None, 1000)] * 2
    assert len([r for r in replies[0].finals if r.text]) >= 5  # about one final per turn
    assert {"dashwood", "queen"} <= _words(replies[0].text)
    assert final_items(replies[1].results) == final_items(replies[0].results)


@pytest.mark.slow
@pytest.mark.parametrize("recording", [pyannote_call, short_conversation])
async def test_every_frame_size_gives_the_same_finals(
    server: TranscribeServer, recording: Callable[[], Recording]
) -> None:
    pcm = pcm_of(recording())
    replies = [await serve_stream(server, paced(frames(pcm, ms))) for ms in (20, 50, 100, 200)]
    assert all(r.exception is None and r.close_code == 1000 for r in replies)
    reference = final_items(replies[0].results)
    assert reference and all(final_items(r.results) == reference for r in replies[1:])
