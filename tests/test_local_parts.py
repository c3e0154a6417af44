"""The local engine's parts that need no Whisper model: words, stability, endpointing, VAD,
language settings, model files, the job pool and speaker clustering on real voice prints."""

from __future__ import annotations

import functools
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from beluga_voice.audio import read_audio
from beluga_voice.errors import ConfigurationError, ModelNotFoundError
from beluga_voice.providers.local import LocalSTT
from beluga_voice.providers.local.diarization.clustering import SpeakerClustering
from beluga_voice.providers.local.diarization.encoder import load_speaker_encoder
from beluga_voice.providers.local.diarization.turns import Turn, embed_turns, turn_spans
from beluga_voice.providers.local.executor import ROUTINE, URGENT, PriorityExecutor
from beluga_voice.providers.local.languages import plan_languages
from beluga_voice.providers.local.model_files import WhisperModelFiles, default_model_path, inspect_model
from beluga_voice.providers.local.segmenter import UtteranceTracker
from beluga_voice.providers.local.stabilizer import Stabilizer
from beluga_voice.providers.local.streaming import StreamSettings
from beluga_voice.providers.local.vad import WINDOW, StreamingVAD
from beluga_voice.providers.local.words import ends_sentence, split_punctuation, to_words
from beluga_voice.stt.model import Word, join_words


class _RawWord:
    def __init__(self, word: str, start: float, end: float, probability: float = 0.9) -> None:
        self.word, self.start, self.end, self.probability = word, start, end, probability


def _decode(*items: tuple[str, float, float]) -> tuple[Word, ...]:
    return tuple(to_words([_RawWord(" " + t, s, e) for t, s, e in items], 0.0, 0.0, 100.0))


# -- words -------------------------------------------------------------------------------------


def test_punctuation_becomes_separate_items_like_transcribe() -> None:
    assert split_punctuation("Hello,") == ("", "Hello", ",")
    assert split_punctuation("them.") == ("", "them", ".")
    assert split_punctuation("Mr.") == ("", "Mr.", "")  # an abbreviation keeps its period
    assert split_punctuation('"Yes?"') == ('"', "Yes", '?"')
    words = to_words([_RawWord(" Hello,", 0.1, 0.5), _RawWord(" world.", 0.4, 0.9)], 10.0, 10.0, 10.8)
    assert join_words(words) == "Hello, world."
    assert [w.is_punctuation for w in words] == [False, True, False, True]
    # shifted to the stream timeline, kept in order and inside the decoded audio
    assert [(w.start, w.end) for w in words if not w.is_punctuation] == [(10.1, 10.5), (10.5, 10.8)]
    assert ends_sentence(words) and not ends_sentence(words[:2])


# -- stable partials ---------------------------------------------------------------------------


def test_words_two_decodes_agree_on_become_stable_and_stay() -> None:
    stabilizer = Stabilizer()
    first = stabilizer.partial(_decode(("And", 0.0, 0.4), ("Mr.", 0.4, 0.7), ("John.", 0.8, 1.0)))
    assert not any(w.stable for w in first)  # nothing to agree with yet
    second = stabilizer.partial(
        _decode(("And", 0.0, 0.4), ("Mr.", 0.4, 0.7), ("John", 0.8, 1.1), ("Dashwood", 1.1, 1.6))
    )
    assert [w.text for w in second if w.stable] == ["And", "Mr."]  # "John" was the last word before
    # The decoder changes its mind about a committed word: the stable words are kept as shown.
    third = stabilizer.partial(
        _decode(
            ("Ann", 0.0, 0.4),
            ("Mr.", 0.4, 0.7),
            ("John", 0.8, 1.1),
            ("Dashwood", 1.1, 1.6),
            ("had", 1.7, 1.9),
        )
    )
    assert join_words(third).startswith("And Mr.")
    assert join_words(third) == "And Mr. John Dashwood had"  # no word lost or repeated
    # "John" now agrees; "Dashwood" was the previous decode's last word, so not yet
    assert [w.text for w in third if w.stable] == ["And", "Mr.", "John"]


# -- endpointing -------------------------------------------------------------------------------


def test_tracker_opens_with_pre_roll_and_measures_silence() -> None:
    tracker = UtteranceTracker(threshold=0.5, pre_roll=1000)
    tracker.push(np.array([0.1] * 10 + [0.9] * 5 + [0.4] * 2 + [0.1] * 6, np.float32))
    speech = tracker.open
    assert speech is not None
    assert speech.start == 10 * WINDOW - 1000
    assert speech.speech_end == 17 * WINDOW  # 0.4 continues speech (hysteresis down to 0.35)
    assert tracker.silence == 6 * WINDOW
    closed = tracker.close(speech.speech_end + 2400)
    assert (closed.start, closed.end, closed.speech_end) == (
        10 * WINDOW - 1000,
        17 * WINDOW + 2400,
        17 * WINDOW,
    )
    tracker.push(np.array([0.9], np.float32))
    assert tracker.open is not None and tracker.open.start >= closed.end  # never overlaps the last one


def test_tracker_cuts_an_overlong_utterance_at_its_quietest_point() -> None:
    tracker = UtteranceTracker(threshold=0.5, pre_roll=0)
    tracker.push(np.array([0.9] * 40 + [0.45] + [0.9] * 20, np.float32))
    closed = tracker.split(30 * WINDOW, 50 * WINDOW)
    assert closed.end == 40 * WINDOW + WINDOW // 2  # the middle of the quiet window
    assert tracker.open is not None and tracker.open.start == closed.end
    assert closed.speech_samples == 41 * WINDOW  # 0.45 still continues speech (hysteresis)


def test_streaming_vad_hears_speech_not_silence(data_dir: Path) -> None:
    speech = read_audio(data_dir / "cards" / "005.wav").samples[:, 0]
    vad = StreamingVAD()
    pieces = [vad.feed(np.zeros(16000, np.float32))]
    pieces += [vad.feed(speech[i : i + 1234]) for i in range(0, speech.size, 1234)]  # odd piece sizes
    silence, talk = pieces[0], np.concatenate(pieces[1:])
    assert silence.size == 16000 // WINDOW and silence.max() < 0.2
    assert talk.size == (16000 % WINDOW + speech.size) // WINDOW
    assert np.mean(talk > 0.5) > 0.5


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ConfigurationError, match="end_silence must be positive"):
        StreamSettings(end_silence=0)
    with pytest.raises(ConfigurationError, match="max_segment must be 1-29 s"):
        StreamSettings(max_segment=40)
    with pytest.raises(ConfigurationError, match="sentence_end_silence cannot be longer"):
        StreamSettings(end_silence=0.3, sentence_end_silence=0.5)


# -- languages and model files -------------------------------------------------------------------


def test_language_plans() -> None:
    english = inspect_model()
    assert not english.multilingual
    plan = plan_languages(english, None, False, ())
    assert (plan.fixed, plan.locale) == ("en", "en-US")
    assert plan_languages(english, "en-GB", False, ()).locale == "en-GB"
    multilingual = WhisperModelFiles(Path("/models/small"), 51865)
    detect = plan_languages(multilingual, None, True, ["en-US", "fr-CA"])
    assert detect.fixed is None and detect.candidates == {"en": "en-US", "fr": "fr-CA"}
    assert detect.locale_for("fr") == "fr-CA" and detect.locale_for("de") == "de-DE"
    assert plan_languages(multilingual, "fr-FR", False, ()).fixed == "fr"
    with pytest.raises(ConfigurationError, match="only one of language_code, identify_language"):
        plan_languages(multilingual, "fr-FR", True, ())
    with pytest.raises(ConfigurationError, match="only applies with identify_language"):
        plan_languages(multilingual, None, False, ["fr-FR"])
    with pytest.raises(ConfigurationError, match="cannot be transcribed by the local engine"):
        plan_languages(multilingual, "xx-YY", False, ())


def test_model_directory_problems_are_named(tmp_path: Path) -> None:
    packaged = default_model_path()
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (tmp_path / name).write_bytes((packaged / name).read_bytes())
    with pytest.raises(ModelNotFoundError, match=r"missing model\.bin"):
        inspect_model(tmp_path)
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match=r"model\.bin: is empty"):
        inspect_model(tmp_path)
    (tmp_path / "model.bin").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(ModelNotFoundError, match=r"config\.json: is not valid JSON"):
        inspect_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({}))
    assert inspect_model(tmp_path).vocabulary_size == 51864


def test_model_names_are_fetched_only_when_allowed() -> None:
    with pytest.raises(ModelNotFoundError, match=r"'small' is a model name.*allow_download=True"):
        LocalSTT(model_path="small", language_code="fr-FR")
    # allowed: nothing is fetched until the engine loads, and the name says it is multilingual
    french = LocalSTT(model_path="small", allow_download=True, language_code="fr-FR")
    assert french.sample_rate == 16000
    with pytest.raises(ConfigurationError, match="English-only"):
        LocalSTT(model_path="base.en", allow_download=True, language_code="fr-FR")


# -- the job pool ------------------------------------------------------------------------------


def test_urgent_jobs_overtake_queued_routine_ones() -> None:
    pool = PriorityExecutor(workers=1)
    gate = threading.Event()
    order: list[str] = []
    blocker = pool.submit(gate.wait, ROUTINE)
    futures = [
        pool.submit(functools.partial(order.append, name), priority)
        for name, priority in [("p1", ROUTINE), ("f1", URGENT), ("p2", ROUTINE), ("f2", URGENT)]
    ]
    time.sleep(0.05)
    gate.set()
    assert blocker.result(timeout=5)
    for future in futures:
        future.result(timeout=5)
    assert order == ["f1", "f2", "p1", "p2"]
    pool.shutdown()
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(lambda: None)


# -- speaker clustering on real voices ---------------------------------------------------------


@pytest.fixture(scope="module")
def voices(data_dir: Path) -> dict[str, list[tuple[np.ndarray, float]]]:
    encoder = load_speaker_encoder()
    out: dict[str, list[tuple[np.ndarray, float]]] = {}
    for corpus in ("librivox", "cards"):
        clips = [read_audio(p).samples[:, 0] for p in sorted((data_dir / corpus).glob("*.wav"))]
        prints = encoder.embed_many(clips)
        out[corpus] = [(v, clip.size / 16000) for v, clip in zip(prints, clips, strict=True)]
    return out


def _turn(voice: np.ndarray, start: float, seconds: float) -> Turn:
    return Turn(start, start + seconds, voice)


def test_clustering_labels_two_real_voices_consistently(
    voices: dict[str, list[tuple[np.ndarray, float]]],
) -> None:
    clusters = SpeakerClustering()
    labels = []
    for (reader, r_len), (card, c_len) in zip(voices["librivox"], voices["cards"], strict=True):
        for voice, seconds in ((reader, r_len), (card, c_len)):
            word = Word("x", 0.0, seconds)
            labels.append(clusters.label_words([word], [_turn(voice, 0.0, seconds)])[0].speaker)
    assert labels == ["0", "1"] * 5


def test_a_blip_cannot_start_a_speaker_and_turns_inside_a_result_get_their_own_voice(
    voices: dict[str, list[tuple[np.ndarray, float]]],
) -> None:
    clusters = SpeakerClustering()
    reader, card = voices["librivox"][0][0], voices["cards"][4][0]
    assert clusters.label_words([Word("a", 0, 3)], [_turn(reader, 0, 3)])[0].speaker == "0"
    blip = clusters.label_words([Word("b", 5, 5.3)], [_turn(card, 5, 0.3)])
    assert blip[0].speaker == "0" and clusters.count == 1  # 0.3 s is too little to trust
    words = [Word("one", 10, 12), Word(".", 12, 12, is_punctuation=True), Word("two", 12.2, 15)]
    labelled = clusters.label_words(words, [_turn(reader, 10, 2), _turn(card, 12.2, 2.8)])
    assert [w.speaker for w in labelled] == ["0", "0", "1"]  # punctuation goes with its word


def test_turns_split_at_sentence_ends_and_pauses() -> None:
    said = [
        ("Oh,", 0.0, 0.4),
        ("hello.", 0.4, 0.9),
        ("Neither", 1.0, 1.4),
        ("did", 1.4, 1.6),
        ("I", 1.6, 1.7),
    ]
    words = list(_decode(*said, ("Okay", 2.2, 2.9)))
    assert [join_words(words[a : b + 1]) for a, b in turn_spans(words)] == [
        "Oh, hello.",
        "Neither did I",
        "Okay",
    ]
    words = list(_decode(*said, ("Okay", 2.2, 2.4)))  # too short to judge alone: joins the turn before
    assert [join_words(words[a : b + 1]) for a, b in turn_spans(words)] == [
        "Oh, hello.",
        "Neither did I Okay",
    ]


def test_a_change_of_voice_inside_one_turn_is_found(data_dir: Path) -> None:
    """One turn, no pause, no full stop: a reader's sentence running into the other speaker's."""
    reader = read_audio(data_dir / "librivox" / "sense_and_sensibility_01_austen_64kb-0930.wav").samples[:, 0]
    cards = read_audio(data_dir / "cards" / "005.wav").samples[:, 0]
    audio = np.concatenate([reader, cards])
    joint = reader.size / 16000
    # one word every 0.4 s over each recording's speech (times only matter for where cuts may go)
    words = [Word("w", t, t + 0.3) for t in np.arange(0.4, joint - 0.4, 0.4)]
    words += [Word("w", t, t + 0.3) for t in np.arange(joint + 0.2, joint + 3.2, 0.4)]
    turns = embed_turns(load_speaker_encoder(), audio, 0.0, words)
    assert len(turns) == 2
    assert abs(turns[1].start - (joint + 0.2)) < 0.01  # cut at the gap where the voice changes
    assert float(turns[0].voice @ turns[1].voice) < 0.65
    one_voice = embed_turns(load_speaker_encoder(), reader, 0.0, words[: len(words) // 2])
    assert len(one_voice) == 1


def test_looking_for_a_change_of_voice_hears_a_long_turn_about_once(data_dir: Path) -> None:
    """The final of a long utterance waits for its speaker check: the audio it puts through the
    speaker model stays near the turn's own length (its print, plus the windows compared at its gaps),
    not a print of both sides of every gap tried (about seven times the turn)."""
    reader = read_audio(data_dir / "librivox" / "sense_and_sensibility_01_austen_64kb-0870.wav").samples[:, 0]
    encoder = load_speaker_encoder()
    heard: list[int] = []

    class Counting:
        dim = encoder.dim

        def embed(self, samples: np.ndarray) -> np.ndarray:
            heard.append(samples.size)
            return encoder.embed(samples)

        def embed_many(self, pieces: list[np.ndarray]) -> np.ndarray:
            heard.extend(piece.size for piece in pieces)
            return encoder.embed_many(pieces)

    words = [Word("w", t, t + 0.3) for t in np.arange(0.2, reader.size / 16000 - 0.4, 0.4)]
    turns = embed_turns(Counting(), reader, 0.0, words)
    assert len(turns) == 1, "one voice: one turn"
    assert sum(heard) <= 2.5 * reader.size, (sum(heard) / reader.size, "times the turn")

