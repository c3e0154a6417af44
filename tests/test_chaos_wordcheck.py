"""The word accounting the chaos tests rely on: a checker that cannot see a loss or a duplicate would
make them worthless, so it is checked on its own."""

from __future__ import annotations

from beluga_voice.stt.model import TranscriptResult, Word
from beluga_voice.stt.wordcheck import (
    check_words,
    final_spans,
    final_words,
    normalize,
    order_violations,
    spoken_words,
    stable_words,
)


def said(*spec: tuple[str, float], speaker: str | None = None) -> list[Word]:
    return [Word(text, start, start + 0.3, speaker=speaker) for text, start in spec]


REFERENCE = said(
    ("he", 1.0), ("was", 1.4), ("not", 1.8), ("five", 3.0), ("five", 3.5), ("young", 5.0), ("man", 5.4)
)


def test_the_same_words_with_slightly_different_times_are_all_present_once() -> None:
    moved = [Word(w.text.upper() + ".", w.start + 0.2, w.end + 0.25) for w in REFERENCE]
    check = check_words(REFERENCE, moved)
    assert check.ok and len(check.paired) == 7 and not check.changed and not check.added


def test_audio_that_produced_nothing_is_lost() -> None:
    check = check_words(REFERENCE, [w for w in REFERENCE if w.start < 4.0])
    assert [w.text for w in check.lost] == ["young", "man"] and not check.ok


def test_a_word_decoded_differently_is_changed_not_lost() -> None:
    candidate = [*REFERENCE[:5], Word("yang", 5.05, 5.3), REFERENCE[6]]
    check = check_words(REFERENCE, candidate)
    assert check.ok and [w.text for w in check.changed] == ["young"]
    assert [w.text for w in check.added] == ["yang"] and check.changed_ratio == 1 / 7


def test_a_word_delivered_twice_is_a_duplicate_but_a_word_said_twice_is_not() -> None:
    assert check_words(REFERENCE, REFERENCE).ok  # "five five" is two words, both present
    again = check_words(REFERENCE, [*REFERENCE, Word("man", 5.5, 5.8)])
    assert [w.text for w in again.duplicated] == ["man"] and not again.ok
    three = check_words(REFERENCE, [*REFERENCE, Word("five", 3.2, 3.5)])
    assert len(three.duplicated) == 1


def test_number_words_and_digits_are_the_same_word() -> None:
    assert normalize("Four,") == normalize("4") == "4" and normalize("Well,") == "well"
    assert check_words(said(("four", 1.0)), said(("4", 1.1))).ok


def test_stable_words_are_those_every_run_yields() -> None:
    other = [*REFERENCE[:2], Word("knot", 1.8, 2.1), *REFERENCE[3:]]
    assert [w.text for w in stable_words([REFERENCE, other, REFERENCE])] == [
        "he",
        "was",
        "five",
        "five",
        "young",
        "man",
    ]


def test_speaker_agreement_follows_labels_not_names() -> None:
    ref = said(("a", 1.0), ("b", 2.0), speaker="0") + said(("c", 3.0), ("d", 4.0), speaker="1")
    renamed = said(("a", 1.0), ("b", 2.0), speaker="7") + said(("c", 3.0), ("d", 4.0), speaker="3")
    assert check_words(ref, renamed).speaker_agreement() == 1.0
    merged = said(("a", 1.0), ("b", 2.0), ("c", 3.0), speaker="7") + said(("d", 4.0), speaker="3")
    assert check_words(ref, merged).speaker_agreement() == 0.75


def test_finals_that_go_back_in_time_are_reported() -> None:
    def final(text: str, start: float, end: float) -> TranscriptResult:
        return TranscriptResult(text, False, start, end, text, (Word(text, start, end),))

    in_order = [final("a", 0.0, 1.0), final("b", 1.0, 2.0)]
    assert order_violations(in_order) == [] and [w.text for w in spoken_words(in_order)] == ["a", "b"]
    assert len(order_violations([*in_order, final("c", 1.5, 2.5)])) == 1


def test_a_recognisers_loop_inside_one_result_counts_once_but_a_repeated_result_does_not() -> None:
    def final(*spec: tuple[str, float]) -> TranscriptResult:
        words = tuple(Word(t, s, s + 0.2) for t, s in spec)
        return TranscriptResult("r", False, words[0].start, words[-1].end, "", words)

    loop = final(("ten", 1.0), ("of", 1.2), ("clubs", 1.4), ("ten", 1.6), ("of", 1.6), ("clubs", 1.7))
    assert [w.text for w in spoken_words([loop], collapse_loops=True)] == ["ten", "of", "clubs"]
    assert len(spoken_words([loop])) == 6
    fives = final(("five", 1.0), ("five", 1.5), ("five", 1.5), ("five", 1.5))
    assert [w.text for w in spoken_words([fives], collapse_loops=True)] == ["five"]
    again = spoken_words([loop, loop], collapse_loops=True)  # a final delivered twice stays twice
    assert not check_words(spoken_words([loop], collapse_loops=True), again).ok


def test_a_missing_word_next_to_other_words_is_changed_within_the_slot() -> None:
    reference = said(("hello", 114.66), ("oh", 115.42), ("hello", 115.8))
    check = check_words(reference, said(("oh", 115.42), ("hello", 115.8)))
    assert check.ok and [w.start for w in check.changed] == [114.66]
    assert not check_words(reference, said(("hello", 115.8)), slot=0.5).ok


def test_a_repetition_inside_one_result_is_the_recognisers_not_a_duplicate() -> None:
    def final(rid: str, *spec: tuple[str, float]) -> TranscriptResult:
        words = tuple(Word(t, s, s + 0.2) for t, s in spec)
        return TranscriptResult(rid, False, words[0].start, words[-1].end, "", words)

    reference = said(("i", 118.0), ("thought", 118.5))
    inside = [final("a", ("i", 118.0), ("think", 118.3), ("i", 118.35), ("thought", 118.5))]
    words, groups = final_words(inside)
    check = check_words(reference, words, groups=groups)
    assert check.ok and [w.text for w in check.repeated] == ["i"]
    across = [final("a", ("i", 118.0), ("thought", 118.5)), final("b", ("i", 118.35))]
    words, groups = final_words(across)
    assert [w.text for w in check_words(reference, words, groups=groups).duplicated] == ["i"]


def test_audio_answered_by_an_empty_final_is_changed_not_lost() -> None:
    reference = said(("five", 181.35))
    empty = TranscriptResult("r", False, 181.36, 182.67, "")
    check = check_words(reference, [], heard=final_spans([empty]))
    assert check.ok and [w.text for w in check.changed] == ["five"]
    assert not check_words(reference, [], heard=final_spans([])).ok


def test_a_re_decoding_is_not_an_insertion_but_words_in_a_pause_are() -> None:
    # "young" re-decoded as "yang" stands in for it; "5 5" where the reference has a pause is new.
    candidate = [*REFERENCE[:5], Word("yang", 5.05, 5.3), REFERENCE[6], *said(("5", 8.0), ("5", 8.3))]
    check = check_words(REFERENCE, candidate)
    assert [w.text for w in check.added] == ["yang", "5", "5"]
    assert [w.text for w in check.inserted] == ["5", "5"]
