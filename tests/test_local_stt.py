"""The local provider end to end: the real tiny.en model on real speech."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import numpy as np
import pytest

from beluga_voice.audio import Audio, chunk_bytes, float_to_pcm16, iter_chunks, paced, read_audio
from beluga_voice.errors import ConfigurationError, ModelNotFoundError
from beluga_voice.providers.local import LocalEngine, LocalSTT, shared_engine
from beluga_voice.stt import TranscriptResult, create_provider
from beluga_voice.stt.model import Transcript

pytestmark = pytest.mark.model
RATE = 16000


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return shared_engine()  # the process-wide tiny.en, loaded once for every module


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


async def _fast(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    """Audio as fast as the engine takes it, yielding to the loop between chunks like a socket."""
    for chunk in chunks:
        yield chunk
        await asyncio.sleep(0)


def _pcm(samples: np.ndarray) -> bytes:
    return float_to_pcm16(samples.astype(np.float32))


async def _collect(stt: LocalSTT, source: AsyncIterator[bytes]) -> list[TranscriptResult]:
    return [result async for result in stt.stream(source)]


def _transcript(results: list[TranscriptResult]) -> Transcript:
    transcript = Transcript(provider="local")
    for result in results:
        transcript.add(result)
    return transcript


async def test_two_speaker_call_streams_with_labels_and_one_timeline(
    engine: LocalEngine, data_dir: Path
) -> None:
    """What the live path guarantees whatever the machine's speed: every final word labelled, one
    monotonic timeline, and both people found where each speaks for seconds. (Which label an
    online decision gives a one-word "Hello?" depends on how utterances fall, so that is measured
    in bench/local_engine.py, and file mode is checked for exact labels in test_local_file_mode.py.)"""
    stt = LocalSTT(engine=engine, show_speaker_label=True)
    call = read_audio(data_dir / "pyannote" / "sample.wav").samples[:, 0]
    results = await _collect(stt, _fast(iter_chunks(_pcm(call), chunk_bytes(RATE, 100))))
    transcript = _transcript(results)

    assert {"hello", "diane", "chicago", "jersey", "texas", "yankee"} <= _words(transcript.text)
    labels = transcript.speakers  # labelled in order of first appearance, every item of every final
    assert labels == [str(k) for k in range(len(labels))]
    assert all(w.speaker for r in results if r.is_final for w in r.words)
    assert all(r.language_code == "en-US" for r in results)

    # Both people in the part of the call where each speaks for seconds at a time.
    later = call[14 * RATE :]
    excerpt = _transcript(await _collect(stt, _fast(iter_chunks(_pcm(later), chunk_bytes(RATE, 100)))))
    # Fed fast, the stream now cuts this excerpt exactly as it does live (at sentence ends), and on
    # such short turns the clustering may split a voice in two (issue 11 is about the speaker count);
    # what must hold is that the two people get different labels where each speaks at length.
    assert len(excerpt.speakers) >= 2 and all(w.speaker for w in excerpt.words)
    sheila = [w for w in excerpt.words if w.text.lower().startswith("sheila")]
    jersey_now = [
        w for w in excerpt.words if w.start + 14 > 20.2 and w.end + 14 < 21.5
    ]  # Diane, per the RTTM
    assert sheila and jersey_now and sheila[0].speaker != jersey_now[0].speaker

    # Every transcribed stretch of the reference has final words around it.
    for line in (data_dir / "pyannote" / "sample.stm").read_text().splitlines():
        start, end = map(float, line.split()[3:5])
        assert any(start - 0.5 <= w.start <= end + 0.5 for w in transcript.words), line

    # One continuous, monotonic timeline from the first sample.
    words = transcript.words
    assert all(w.start <= w.end for w in words)
    assert all(a.start <= b.start and a.end <= b.end for a, b in itertools.pairwise(words))
    assert words[0].start > 6.0 and words[-1].end <= 30.0
    assert all(0.0 <= (w.confidence or 0.0) <= 1.0 for w in words)


async def test_partials_come_first_and_finals_arrive_while_audio_flows(
    engine: LocalEngine, data_dir: Path
) -> None:
    """Two utterances with a pause, fed at 1.5x real time: the first final must not wait for the
    end of the input, partials of an utterance precede its final, and stable words never change."""
    first = read_audio(data_dir / "librivox" / "sense_and_sensibility_01_austen_64kb-0870.wav").samples[:, 0]
    second = read_audio(data_dir / "cards" / "005.wav").samples[:, 0]
    pause = np.zeros(int(1.5 * RATE), np.float32)
    audio = np.concatenate([first, pause, second, pause])
    stt = LocalSTT(engine=engine, partial_interval=0.5)

    arrivals: list[tuple[float, TranscriptResult]] = []
    last_chunk_fed = 0.0

    async def source() -> AsyncIterator[bytes]:
        nonlocal last_chunk_fed
        async for chunk in paced(iter_chunks(_pcm(audio), chunk_bytes(RATE, 100)), RATE, speed=1.5):
            last_chunk_fed = time.monotonic()
            yield chunk

    async for result in stt.stream(source()):
        arrivals.append((time.monotonic(), result))

    results = [r for _, r in arrivals]
    finals = [r for r in results if r.is_final]
    pause_at = first.size / RATE
    before = [r for r in finals if r.end < pause_at + 0.5]  # Whisper may punctuate one utterance as
    after = [r for r in finals if r.start > pause_at + 1.0]  # two sentences: then two finals
    assert before and after and len(before) + len(after) == len(finals)
    first_done = max(wall for wall, r in arrivals if r in before)
    assert first_done < last_chunk_fed  # the first utterance's final did not wait for the end of input
    assert {"dashwood", "leisure", "prudently", "power"} <= _words(" ".join(r.text for r in before))
    assert {"spades", "hearts"} <= _words(" ".join(r.text for r in after))
    assert any(r.is_partial for r in results)
    for final in finals:
        position = results.index(final)
        partials = [r for r in results if r.result_id == final.result_id and r.is_partial]
        assert all(results.index(p) < position for p in partials)
        for earlier, later in itertools.pairwise(partials):  # stable words stay as they are
            assert later.text.startswith(earlier.stable_text)
    assert all(a.end <= b.start for a, b in itertools.pairwise(finals))  # one timeline, in order


async def test_batch_path_gives_the_same_result_model(engine: LocalEngine, data_dir: Path) -> None:
    stt = LocalSTT(engine=engine)
    transcript = await stt.transcribe_full(data_dir / "pyannote" / "sample.wav")
    assert {"hello", "chicago", "jersey", "yankee"} <= _words(transcript.text)
    assert transcript.language_code == "en-US"
    assert all(r.is_final and r.words and r.language_code == "en-US" for r in transcript.results)
    assert all(w.speaker is None for w in transcript.words)  # not asked for
    starts = [w.start for w in transcript.words]
    assert starts == sorted(starts) and starts[0] > 6.0 and transcript.words[-1].end <= 30.0
    assert transcript.duration == pytest.approx(30.0, abs=0.01)
    assert len({r.result_id for r in transcript.results}) == len(transcript.results)


async def test_other_input_rates_are_resampled(engine: LocalEngine, data_dir: Path) -> None:
    speech = read_audio(data_dir / "librivox" / "sense_and_sensibility_01_austen_64kb-0880.wav")
    narrowband = Audio(speech.samples, speech.sample_rate).resample(8000)
    stt = LocalSTT(engine=engine, sample_rate=8000)
    results = await _collect(stt, _fast(iter_chunks(narrowband.to_pcm16(), chunk_bytes(8000, 100))))
    assert {"he", "was", "not", "young", "man"} <= _words(_transcript(results).text)


async def test_streams_share_one_engine_and_keep_the_loop_responsive(
    engine: LocalEngine, data_dir: Path
) -> None:
    files = ["librivox/sense_and_sensibility_01_austen_64kb-0930.wav", "cards/002.wav"]
    audios = [read_audio(data_dir / f).samples[:, 0] for f in files]
    lags: list[float] = []

    async def ticker() -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - before - 0.01)

    tick = asyncio.create_task(ticker())
    try:
        outputs = await asyncio.gather(
            *(
                _collect(LocalSTT(engine=engine), _fast(iter_chunks(_pcm(a), chunk_bytes(RATE, 100))))
                for a in audios
            )
        )
    finally:
        tick.cancel()
    assert {"amiable", "himself"} <= _words(_transcript(outputs[0]).text)
    assert {"queen", "of"} <= _words(_transcript(outputs[1]).text)
    assert max(lags) < 0.5  # decoding ran off the event loop


def test_registry_default_is_the_local_engine() -> None:
    provider = create_provider()
    assert isinstance(provider, LocalSTT) and provider.name == "local"


def test_missing_model_names_the_directory_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=rf"{re.escape(str(tmp_path))}.*missing model\.bin"):
        LocalSTT(model_path=tmp_path)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        LocalEngine(tmp_path / "nowhere")


def test_a_damaged_model_file_is_reported(tmp_path: Path, engine: LocalEngine) -> None:
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (tmp_path / name).write_bytes((engine.model_path / name).read_bytes())
    (tmp_path / "model.bin").write_bytes((engine.model_path / "model.bin").read_bytes()[:4096])
    with pytest.raises(ModelNotFoundError, match=r"cannot load the speech model"):
        LocalEngine(tmp_path)


def test_english_only_model_refuses_other_languages_with_the_fix(engine: LocalEngine) -> None:
    with pytest.raises(ConfigurationError, match=r"'fr-FR' is not English.*English-only.*multilingual"):
        LocalSTT(engine=engine, language_code="fr-FR")
    with pytest.raises(ConfigurationError, match="identify_language needs a multilingual model"):
        LocalSTT(engine=engine, identify_language=True, language_options=["en-US", "fr-FR"])
    assert LocalSTT(engine=engine, language_code="en-GB") is not None


async def test_stopping_early_or_a_failing_source_leaves_the_engine_usable(
    engine: LocalEngine, data_dir: Path
) -> None:
    speech = _pcm(
        read_audio(data_dir / "librivox" / "sense_and_sensibility_01_austen_64kb-0930.wav").samples[:, 0]
    )
    stt = LocalSTT(engine=engine)
    async for _result in stt.stream(_fast(iter_chunks(speech, chunk_bytes(RATE, 100)))):
        break  # the consumer walks away after the first result

    async def broken() -> AsyncIterator[bytes]:
        yield speech[:3200]
        raise ConnectionResetError("microphone unplugged")

    with pytest.raises(ConnectionResetError, match="unplugged"):
        await _collect(stt, broken())
    results = await _collect(stt, _fast(iter_chunks(speech, chunk_bytes(RATE, 100))))
    assert {"amiable", "himself"} <= _words(_transcript(results).text)
