"""The offline diarizer's parts on hand-made inputs: the DER scorer, clustering, word labelling."""

from __future__ import annotations

import numpy as np
import pytest

from beluga_voice.providers.local.diarization.agglomerative import (
    average_linkage,
    cosine_similarities,
    eigengap_count,
)
from beluga_voice.providers.local.diarization.der import score
from beluga_voice.providers.local.diarization.offline import SpeakerSegment, label_words
from beluga_voice.providers.local.diarization.regions import fit_to_speech
from beluga_voice.stt.model import SpeakerTurn, Word

REFERENCE = [SpeakerTurn("a", 0.0, 10.0), SpeakerTurn("b", 10.0, 20.0), SpeakerTurn("a", 15.0, 16.0)]


def test_der_is_zero_for_the_reference_under_other_names_and_counts_each_error_kind() -> None:
    renamed = [SpeakerTurn("x", 0.0, 10.0), SpeakerTurn("y", 10.0, 20.0)]
    perfect = score(REFERENCE, [*renamed, SpeakerTurn("x", 15.0, 16.0)], 20.0)
    assert perfect.der == 0.0
    assert perfect.speech == pytest.approx(18.5, abs=0.02)  # collars unscored, the overlap twice

    one_speaker = score(REFERENCE, [SpeakerTurn("x", 0.0, 20.0)], 20.0)
    assert one_speaker.missed == pytest.approx(0.5, abs=0.02)  # the overlap needs a second speaker
    assert one_speaker.confusion == pytest.approx(8.0, abs=0.02) and one_speaker.false_alarm == 0.0

    nothing = score(REFERENCE, [], 20.0)
    assert nothing.der == pytest.approx(1.0) and nothing.missed_rate == pytest.approx(1.0)

    extra = score(REFERENCE, [*renamed, SpeakerTurn("x", 15.0, 16.0), SpeakerTurn("z", 21.0, 23.0)], 25.0)
    assert extra.false_alarm == pytest.approx(2.0, abs=0.02) and extra.confusion == 0.0

    # Outside the annotated part (UEM) nothing counts: the false alarm after 20 s is not an error.
    annotated = score(
        REFERENCE,
        [*renamed, SpeakerTurn("x", 15.0, 16.0), SpeakerTurn("z", 21.0, 23.0)],
        25.0,
        uem=(0.0, 20.0),
    )
    assert annotated.der == 0.0 and annotated.speech == pytest.approx(18.5, abs=0.02)


def voices(groups: list[int], seed: int = 0) -> np.ndarray:
    """Noisy unit prints around one direction per group."""
    rng = np.random.default_rng(seed)
    centres = np.eye(16)[: max(groups) + 1] * 3
    prints = np.array([centres[g] + rng.normal(0, 0.4, 16) for g in groups], np.float32)
    unit: np.ndarray = (prints / np.linalg.norm(prints, axis=1, keepdims=True)).astype(np.float32)
    return unit


def test_average_linkage_finds_the_groups_and_honours_count_bounds() -> None:
    groups = [0, 0, 1, 1, 0, 2, 2, 1, 0]
    similarity = cosine_similarities(voices(groups))
    labels = average_linkage(similarity, stop_below=0.5)
    assert labels.tolist() == [0, 0, 1, 1, 0, 2, 2, 1, 0]  # numbered in order of first appearance
    assert average_linkage(similarity, stop_below=0.5, max_clusters=1).tolist() == [0] * 9
    assert average_linkage(similarity, stop_below=-1.0, min_clusters=2).max() == 1
    assert eigengap_count(similarity, 2, 6) == 3


def test_every_item_gets_a_speaker_punctuation_follows_its_word() -> None:
    segments = [SpeakerSegment("0", 0.0, 2.0), SpeakerSegment("1", 2.5, 5.0)]
    words = [
        Word("Hi", 0.1, 0.4),
        Word(",", 0.4, 0.4, is_punctuation=True),
        Word("there", 1.7, 2.4),  # mostly in the first segment
        Word(".", 2.4, 2.4, is_punctuation=True),
        Word('"', 2.45, 2.45, is_punctuation=True),  # an opening mark belongs to what follows
        Word("Yes", 2.6, 3.0),
        Word("ok", 6.0, 6.5),  # outside every segment: the nearest
    ]
    assert [w.speaker for w in label_words(words, segments)] == ["0", "0", "0", "0", "1", "1", "1"]
    assert {w.speaker for w in label_words(words, [])} == {"0"}


def test_word_times_are_kept_inside_the_speech_they_belong_to() -> None:
    regions = [(1.0, 3.0), (5.0, 8.0)]
    words = [
        Word("Ten", 1.2, 1.5),
        Word("clubs", 1.6, 4.9),  # stretched over the silence up to the next phrase
        Word(".", 4.9, 4.9, is_punctuation=True),
        Word("Five", 4.9, 5.4),  # starts early, in the silence
        Word("hum", 9.0, 9.5),  # outside all speech: left alone
    ]
    fitted = fit_to_speech(words, regions)
    assert [(w.text, w.start, w.end) for w in fitted] == [
        ("Ten", 1.2, 1.5),
        ("clubs", 1.6, 3.0),
        (".", 3.0, 3.0),
        ("Five", 5.0, 5.4),
        ("hum", 9.0, 9.5),
    ]


def test_a_word_in_overlapped_speech_keeps_the_speaker_whose_turn_it_is() -> None:
    # Speaker 0 holds the floor from 0 to 6 s; speaker 1 says "yeah" over it at 2.0-2.4 s.
    segments = [SpeakerSegment("0", 0.0, 6.0), SpeakerSegment("1", 2.0, 2.4), SpeakerSegment("1", 6.2, 8.0)]
    words = [Word("so", 1.6, 1.9), Word("the", 2.05, 2.3), Word("budget", 2.3, 2.9), Word("right", 6.5, 7.0)]
    assert [w.speaker for w in label_words(words, segments)] == ["0", "0", "0", "1"]
