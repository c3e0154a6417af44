"""The result model: how finals become a transcript a reader (and every serializer) relies on."""

from __future__ import annotations

import pytest

from beluga_voice.stt.model import (
    Alternative,
    Entity,
    LanguageScore,
    Transcript,
    TranscriptResult,
    Word,
    join_words,
)


def w(text: str, start: float, speaker: str | None = None, *, stable: bool | None = None) -> Word:
    return Word(text, start, start + 0.4, 0.9, speaker, stable)


def p(text: str, at: float) -> Word:
    return Word(text, at, at, None, None, is_punctuation=True)


def final(
    rid: str, *words: Word, channel: str | None = None, language: str | None = None
) -> TranscriptResult:
    spoken = [x for x in words if not x.is_punctuation]
    return TranscriptResult(
        rid, False, spoken[0].start, spoken[-1].end, join_words(words), words, channel, language
    )


def test_join_words_puts_no_space_before_punctuation() -> None:
    assert join_words([w("Hi", 0), p(",", 0.4), w("you", 0.5), p("?", 0.9)]) == "Hi, you?"
    assert join_words([]) == ""


def test_segments_split_a_result_where_the_speaker_changes() -> None:
    transcript = Transcript("p")
    transcript.add(
        final("a", w("Hello", 0, "spk_0"), p(".", 0.4), w("Hi", 1, "spk_1"), w("there", 1.5, "spk_1"))
    )
    segments = transcript.segments()
    assert [(s.speaker, s.text) for s in segments] == [("spk_0", "Hello."), ("spk_1", "Hi there")]
    assert (segments[1].start, segments[1].end) == (1, 1.9)
    assert transcript.speakers == ["spk_0", "spk_1"]


def test_segments_join_consecutive_results_of_one_speaker() -> None:
    transcript = Transcript("p")
    transcript.add(final("a", w("One", 0, "spk_0"), p(".", 0.4)))
    transcript.add(final("b", w("Two", 1, "spk_0"), p(".", 1.4)))
    transcript.add(final("c", w("Three", 2, "spk_1")))
    transcript.add(final("d", w("Four", 3, "spk_0")))
    segments = transcript.segments()
    assert [(s.speaker, s.text, s.start, s.end) for s in segments] == [
        ("spk_0", "One. Two.", 0, 1.4),
        ("spk_1", "Three", 2, 2.4),
        ("spk_0", "Four", 3, 3.4),
    ]
    assert len(segments[0].words) == 4, "a segment keeps every word, punctuation included"


def test_segments_keep_channels_languages_and_unlabelled_results_apart() -> None:
    transcript = Transcript("p")
    transcript.add(final("a", w("left", 0, "spk_0"), channel="ch_0"))
    transcript.add(final("b", w("right", 1, "spk_0"), channel="ch_1"))
    transcript.add(final("c", w("bonjour", 2, "spk_0"), channel="ch_1", language="fr-FR"))
    transcript.add(final("d", w("no", 3)))
    transcript.add(final("e", w("labels", 4)))
    transcript.add(TranscriptResult("f", False, 5.0, 6.0, "text only"))
    segments = transcript.segments()
    assert [(s.text, s.channel, s.language_code) for s in segments] == [
        ("left", "ch_0", None),
        ("right", "ch_1", None),
        ("bonjour", "ch_1", "fr-FR"),
        ("no", None, None),
        ("labels", None, None),
        ("text only", None, None),
    ], "results without a speaker stay one segment each: nothing says they are one person"
    assert (segments[-1].start, segments[-1].end, segments[-1].words) == (5.0, 6.0, ())


def test_transcript_keeps_only_finals() -> None:
    transcript = Transcript("p")
    transcript.add(TranscriptResult("a", True, 0.0, 1.0, "hel"))
    transcript.add(TranscriptResult("a", False, 0.0, 1.0, "hello"))
    transcript.add(TranscriptResult("b", False, 1.0, 2.0, ""))
    transcript.add(TranscriptResult("c", False, 2.0, 3.0, "world"))
    assert transcript.text == "hello world"
    assert [r.result_id for r in transcript.results] == ["a", "b", "c"]


def test_result_speaker_is_the_majority_of_spoken_words() -> None:
    result = final("a", w("a", 0, "spk_1"), w("b", 1, "spk_0"), w("c", 2, "spk_0"), p(".", 2.4))
    assert result.speaker == "spk_0"
    assert final("b", w("x", 0)).speaker is None


def test_stable_text_is_the_stable_prefix_of_a_partial_and_all_of_a_final() -> None:
    words = (
        w("one", 0, stable=True),
        w("two", 1, stable=True),
        w("tree", 2, stable=False),
        w("four", 3, stable=True),
    )
    partial = TranscriptResult("a", True, 0.0, 3.4, "one two tree four", words)
    assert partial.stable_text == "one two", "stops at the first unstable word"
    assert TranscriptResult("a", True, 0.0, 1.0, "x", (w("x", 0),)).stable_text == ""
    assert (
        TranscriptResult("a", False, 0.0, 3.4, "one two three four", words).stable_text
        == "one two three four"
    )


def test_shifted_moves_every_time_on_the_timeline() -> None:
    entity = Entity("PII", "NAME", "Ann", 0.5, 0.9, 0.9)
    words = (w("Ann", 0.5, "spk_0"), p(".", 0.9))
    result = TranscriptResult(
        "a",
        False,
        0.5,
        0.9,
        "Ann.",
        words,
        language_scores=(LanguageScore("en-US", 1.0),),
        entities=(entity,),
        alternatives=(Alternative("An.", words, (entity,)),),
    )
    moved = result.shifted(60.0)
    assert (moved.start, moved.end) == (60.5, 60.9)
    assert [(x.start, x.end) for x in moved.words] == [(60.5, 60.9), (60.9, 60.9)]
    assert (moved.entities[0].start, moved.entities[0].end) == (60.5, 60.9)
    alternative = moved.alternatives[0]
    assert [x.start for x in alternative.words] == [60.5, 60.9], "alternatives move with the result"
    assert alternative.entities[0].start == 60.5
    assert moved.text == result.text and moved.words[0].speaker == "spk_0"
    assert moved.shifted(-60.0).end == pytest.approx(result.end)


def test_to_dict_is_the_documented_schema_with_nulls_for_unknowns() -> None:
    transcript = Transcript("local", duration=4.0, language_code="en-US")
    transcript.add(final("a", w("Hi", 0, "spk_0"), p(".", 0.4), language="en-US"))
    transcript.add(TranscriptResult("b", False, 1.0, 2.0, "no words"))
    document = transcript.to_dict()
    assert document == {
        "provider": "local",
        "duration": 4.0,
        "language_code": "en-US",
        "text": "Hi. no words",
        "segments": [
            {
                "start": 0,
                "end": 0.4,
                "speaker": "spk_0",
                "channel": None,
                "language_code": "en-US",
                "text": "Hi.",
                "words": [
                    {"text": "Hi", "start": 0, "end": 0.4, "confidence": 0.9, "speaker": "spk_0"},
                    {"text": ".", "start": 0.4, "end": 0.4, "confidence": None, "speaker": None},
                ],
            },
            {
                "start": 1.0,
                "end": 2.0,
                "speaker": None,
                "channel": None,
                "language_code": None,
                "text": "no words",
                "words": [],
            },
        ],
        "speaker_turns": [],
    }


def test_dominant_language_is_the_one_spoken_longest() -> None:
    transcript = Transcript("p")
    transcript.add(final("a", w("hola", 0.0), language="es-US"))
    transcript.add(TranscriptResult("b", False, 1.0, 4.0, "long english", language_code="en-US"))
    transcript.add(final("c", w("adios", 5.0), language="es-US"))
    assert transcript.dominant_language() == "en-US"
    assert Transcript("p").dominant_language() is None
