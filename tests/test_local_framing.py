"""``LocalSTT.stream`` gives the same finals however the audio is cut into pieces and whatever the
input rate's framing: every decision is taken on the media timeline, not per piece received."""

from __future__ import annotations

import pytest

from beluga_voice.audio import Audio
from beluga_voice.providers.local import LocalEngine, LocalSTT, shared_engine
from beluga_voice.stt.model import TranscriptResult
from framing_kit import RATE, final_items, frames, paced, pyannote_call, uneven_pieces

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return shared_engine()  # the process-wide tiny.en, loaded once for every module


async def _finals(stt: LocalSTT, pieces: object) -> list[TranscriptResult]:
    return [result async for result in stt.stream(pieces)]  # type: ignore[arg-type]


async def test_pieces_of_any_size_give_the_same_finals(engine: LocalEngine) -> None:
    """Twelve seconds of the call (two speakers, one sentence running into the next): 20 ms
    frames, and pieces from 1 byte to 375 ms with odd byte counts that split samples in two."""
    excerpt = Audio(pyannote_call().samples[14 * RATE : 26 * RATE, None], RATE)
    pcm = excerpt.to_pcm16()
    stt = LocalSTT(engine=engine, show_speaker_label=True)
    runs = [
        await _finals(stt, paced(frames(pcm, 20))),
        await _finals(stt, paced(uneven_pieces(pcm, [1, 777, 4096, 3, 12001, 640]))),
    ]
    reference = final_items(runs[0])
    assert len([w for w in reference if w[0].isalpha()]) >= 15 and all(w[3] for w in reference)
    assert any(r.is_partial for r in runs[0])
    assert final_items(runs[1]) == reference


async def test_resampled_input_gives_the_same_finals_for_any_framing(engine: LocalEngine) -> None:
    """8 kHz input (a phone line) is resampled as it streams: the framing must not move a sample."""
    excerpt = Audio(pyannote_call().samples[14 * RATE : 24 * RATE, None], RATE).resample(8000)
    pcm = excerpt.to_pcm16()
    stt = LocalSTT(engine=engine, sample_rate=8000)
    first = final_items(await _finals(stt, paced(frames(pcm, 20, rate=8000), rate=8000)))
    second = final_items(await _finals(stt, paced(uneven_pieces(pcm, [5, 3333, 160]), rate=8000)))
    assert len(first) >= 10 and second == first
