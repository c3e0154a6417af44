"""Real recordings cut into frames of any size and sent at any pace, and the finals they give.

The recordings are the benchmark's (bench/local_data.py): the pyannote call (unbroken two-speaker
talk) and a conversation stitched from the pocketsphinx utterances (pauses between turns).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

from beluga_voice.audio import float_to_pcm16
from beluga_voice.providers.aws_transcribe.messages import audio_event, end_of_stream
from beluga_voice.server import TranscribeServer
from beluga_voice.server.testing import StreamReply, open_stream, read_reply
from beluga_voice.stt.model import TranscriptResult

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the benchmark's data builders, shared rather than copied
    sys.path.insert(0, str(ROOT))

from bench.local_data import (  # noqa: E402
    Recording,
    pocketsphinx_utterances,
    pyannote_sample,
    stitched_conversation,
)

__all__ = [
    "RATE",
    "Recording",
    "final_items",
    "frames",
    "paced",
    "pcm_of",
    "pyannote_call",
    "serve_stream",
    "short_conversation",
    "uneven_pieces",
]

RATE = 16000
QUERY = "language-code=en-US&media-encoding=pcm&sample-rate=16000"

FinalItem = tuple[str, float, float, str | None]


def pyannote_call() -> Recording:
    return pyannote_sample()


def short_conversation() -> Recording:
    """Three exchanges between the two pocketsphinx speakers with pauses between turns (~26 s)."""
    reader, cards = pocketsphinx_utterances("librivox"), pocketsphinx_utterances("cards")
    turns = list(itertools.chain.from_iterable(zip(reader[:3], cards[:3], strict=True)))
    return stitched_conversation("stitched-short", turns, seed=3)


def pcm_of(recording: Recording) -> bytes:
    return float_to_pcm16(recording.samples)


def frames(pcm: bytes, frame_ms: int, rate: int = RATE) -> Iterator[bytes]:
    size = rate * 2 * frame_ms // 1000
    return (pcm[i : i + size] for i in range(0, len(pcm), size))


def uneven_pieces(pcm: bytes, sizes: Iterable[int]) -> Iterator[bytes]:
    """``pcm`` in pieces of the given byte counts, cycled (odd counts split samples in two)."""
    position = 0
    for size in itertools.cycle(sizes):
        if position >= len(pcm):
            return
        yield pcm[position : position + size]
        position += size


async def paced(
    pieces: Iterable[bytes], rate: int = RATE, speed: float | None = None
) -> AsyncIterator[bytes]:
    """Pieces on a fixed schedule at ``speed`` x real time, or back to back when ``speed`` is None
    (yielding to the loop between them, as a socket reader does)."""
    loop = asyncio.get_running_loop()
    started, sent = loop.time(), 0
    for piece in pieces:
        if speed is not None:
            delay = started + sent / (rate * 2) / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        sent += len(piece)
        yield piece
        if speed is None:
            await asyncio.sleep(0)


async def serve_stream(
    server: TranscribeServer, pieces: AsyncIterator[bytes], *, speakers: bool = False
) -> StreamReply:
    """One client of ``beluga serve``: sends the pieces as AudioEvents while reading the results.

    A client sending faster than the engine decodes is held back by the socket (the server reads
    no further until the engine catches up), so this client does not ping: a held-back connection
    answers pings only once the engine catches up, which on a loaded machine can take seconds.
    """
    query = QUERY + ("&show-speaker-label=true" if speakers else "")
    async with open_stream(f"{server.url}?{query}", ping_interval=None) as ws:
        reader = asyncio.create_task(read_reply(ws))
        async for piece in pieces:
            await ws.send(audio_event(piece))
        await ws.send(end_of_stream())
        return await reader


def final_items(results: Iterable[TranscriptResult]) -> list[FinalItem]:
    """What a user keeps of a stream: every word of every final, with its times and speaker."""
    return [(w.text, w.start, w.end, w.speaker) for r in results if r.is_final for w in r.words]
