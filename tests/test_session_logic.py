"""The session's pure parts: config validation, the state machine, turn-taking rules, reply shapes."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest

from beluga_voice.errors import ConfigurationError
from beluga_voice.session import ALLOWED_TRANSITIONS, SessionConfig, SessionState, SessionStateError, Turn
from beluga_voice.session.reply import SentenceBuffer, reply_text
from beluga_voice.session.state import StateMachine
from beluga_voice.session.turns import TurnTracker, speaker_runs
from beluga_voice.stt.model import TranscriptResult, Word

# -- config -------------------------------------------------------------------------------------


def test_every_session_gets_its_own_uuid() -> None:
    first, second = SessionConfig(), SessionConfig()
    assert first.session_id != second.session_id
    assert uuid.UUID(first.session_id).version == 4


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("end_of_turn_silence", -0.1),
        ("inactivity_timeout", 0),
        ("keep_alive_after", math.nan),
        ("max_retries", -1),
        ("barge_in_min_words", 0),
        ("barge_in_min_duration", "short"),
        ("replay_seconds", 0),
        ("input_queue_size", 0),
        ("session_id", " "),
    ],
)
def test_bad_config_values_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=field):
        SessionConfig(**{field: value})  # type: ignore[arg-type]


def test_inactivity_timeout_can_be_disabled() -> None:
    assert SessionConfig(inactivity_timeout=None).inactivity_timeout is None


# -- states -------------------------------------------------------------------------------------


def test_every_allowed_transition_is_accepted_and_reported() -> None:
    seen: list[tuple[SessionState, SessionState]] = []
    for old, targets in ALLOWED_TRANSITIONS.items():
        for new in targets:
            machine = StateMachine(lambda a, b: seen.append((a, b)))
            machine._state = old
            assert machine.move_to(new)
            assert seen[-1] == (old, new)
    assert len(seen) == sum(len(t) for t in ALLOWED_TRANSITIONS.values())


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (SessionState.IDLE, SessionState.AGENT_SPEAKING),
        (SessionState.ENDED, SessionState.LISTENING),
        (SessionState.LISTENING, SessionState.AGENT_SPEAKING),
        (SessionState.USER_SPEAKING, SessionState.AGENT_SPEAKING),
    ],
)
def test_invalid_transitions_raise_a_clear_error(old: SessionState, new: SessionState) -> None:
    machine = StateMachine()
    machine._state = old
    with pytest.raises(SessionStateError, match=f"{old.value} -> {new.value}"):
        machine.move_to(new)
    assert machine.state is old


def test_staying_in_a_state_is_not_a_change() -> None:
    seen: list[object] = []
    machine = StateMachine(lambda a, b: seen.append((a, b)))
    assert not machine.move_to(SessionState.IDLE)
    assert seen == []


# -- turn-taking --------------------------------------------------------------------------------


def _word(text: str, start: float, speaker: str | None = None, punct: bool = False) -> Word:
    end = start if punct else start + 0.3
    return Word(text, start, end, speaker=speaker, is_punctuation=punct)


def _result(rid: str, words: Sequence[Word], partial: bool) -> TranscriptResult:
    text = " ".join(w.text for w in words)
    return TranscriptResult(rid, partial, words[0].start, words[-1].end, text, tuple(words))


def test_a_change_of_speaker_inside_a_final_ends_the_turn_there() -> None:
    tracker = TurnTracker(end_of_turn_silence=0.5)
    words = [
        _word("hello", 0.0, "0"),
        _word("there", 0.4, "0"),
        _word(".", 0.7, None, punct=True),
        _word("hi", 1.0, "1"),
        _word("back", 1.4, "1"),
    ]
    update = tracker.on_result(_result("a", words, partial=False), now=10.0)
    assert [(d.speaker, d.text) for d in update.finished] == [("0", "hello there.")]
    rest = tracker.on_deadline(now=10.5)
    assert rest is not None
    assert (rest.speaker, rest.text, rest.start, rest.end) == ("1", "hi back", 1.0, 1.7)


def test_a_new_speakers_partial_ends_the_previous_turn_before_its_final() -> None:
    tracker = TurnTracker(end_of_turn_silence=5.0)
    tracker.on_result(_result("a", [_word("yes", 0.0, "0")], partial=False), now=1.0)
    update = tracker.on_result(_result("b", [_word("no", 2.0, "1")], partial=True), now=1.2)
    assert update.speech_started
    assert [d.text for d in update.finished] == ["yes"]


def test_a_turn_waits_for_silence_and_new_speech_keeps_it_open() -> None:
    tracker = TurnTracker(end_of_turn_silence=0.6)
    tracker.on_result(_result("a", [_word("one", 0.0)], partial=True), now=1.0)
    assert tracker.deadline is None  # still speaking
    tracker.on_result(_result("a", [_word("one", 0.0)], partial=False), now=1.3)
    assert tracker.deadline == pytest.approx(1.6)  # silence counts from the last speech seen
    assert tracker.on_deadline(now=1.5) is None
    tracker.on_result(_result("b", [_word("two", 0.5)], partial=True), now=1.55)
    assert tracker.deadline is None
    assert tracker.on_deadline(now=5.0) is None
    tracker.on_result(_result("b", [_word("two", 0.5)], partial=False), now=2.0)
    draft = tracker.on_deadline(now=2.6)
    assert draft is not None and draft.text == "one two"
    assert not tracker.has_open_turn


def test_a_pause_in_the_audio_ends_the_turn_even_when_results_arrive_back_to_back() -> None:
    tracker = TurnTracker(end_of_turn_silence=0.6)
    tracker.on_result(_result("a", [_word("first", 0.0)], partial=False), now=1.0)
    close = tracker.on_result(_result("b", [_word("more", 0.5)], partial=True), now=1.01)
    assert close.finished == ()  # 0.2 s apart: the same turn
    tracker.on_result(_result("b", [_word("more", 0.5)], partial=False), now=1.02)
    later = tracker.on_result(_result("c", [_word("again", 2.0)], partial=False), now=1.03)
    assert [d.text for d in later.finished] == ["first more"]  # 1.2 s of silence in the audio


def test_a_turn_waits_longer_when_partials_showed_speech_the_final_left_out() -> None:
    tracker = TurnTracker(end_of_turn_silence=0.6)
    heard = [_word("hello", 0.0), _word("oh", 0.5), _word("hello", 0.9), _word("there", 1.3)]
    tracker.on_result(_result("a", heard, partial=True), now=2.0)
    tracker.on_result(_result("a", heard[:1], partial=False), now=2.1)  # the provider cut after "hello"
    deadline = tracker.deadline
    assert deadline is not None and deadline > 2.0 + 0.6
    assert tracker.on_deadline(now=2.7) is None  # the rest is on its way as a new result
    tracker.on_result(_result("b", heard[1:], partial=False), now=3.0)
    draft = tracker.on_deadline(now=3.6)
    assert draft is not None and draft.text == "hello oh hello there"


def test_unlabelled_words_continue_the_current_speaker() -> None:
    runs = speaker_runs(
        [_word("a", 0, "1"), _word("b", 1, None), _word(",", 1.3, None, True), _word("c", 2, "2")]
    )
    assert [(s, [w.text for w in r]) for s, r in runs] == [("1", ["a", "b", ","]), ("2", ["c"])]


def test_flush_keeps_words_the_provider_never_finalised() -> None:
    tracker = TurnTracker(end_of_turn_silence=0.6)
    tracker.on_result(_result("a", [_word("done", 0.0)], partial=False), now=1.0)
    tracker.on_result(_result("b", [_word("almost", 0.5), _word("there", 0.9)], partial=True), now=1.2)
    draft = tracker.flush(now=1.3)
    assert draft is not None and draft.text == "done almost there"


# -- replies ------------------------------------------------------------------------------------


def test_sentences_come_out_whole_however_the_text_is_cut() -> None:
    buffer = SentenceBuffer()
    out: list[str] = []
    for piece in ["Hel", "lo there. How a", "re you? I am", " fine"]:
        out += buffer.feed(piece)
    assert out == ["Hello there.", "How are you?"]
    assert buffer.flush() == "I am fine"


_TURN = Turn(0, "user", None, "ping", 0.0, 0.5)


async def test_an_agent_may_return_text_none_or_a_stream() -> None:
    async def plain(turn: Turn, history: Sequence[Turn]) -> str:
        return f"{turn.text} back"

    async def silent(turn: Turn, history: Sequence[Turn]) -> None:
        return None

    async def streamed(turn: Turn, history: Sequence[Turn]) -> AsyncIterator[str]:
        for piece in ("po", "", "ng"):
            yield piece

    assert [p async for p in reply_text(plain, _TURN, ())] == ["ping back"]
    assert [p async for p in reply_text(silent, _TURN, ())] == []
    assert [p async for p in reply_text(streamed, _TURN, ())] == ["po", "ng"]


async def test_an_agent_returning_something_else_gets_a_clear_error() -> None:
    async def wrong(turn: Turn, history: Sequence[Turn]) -> int:
        return 42

    with pytest.raises(ConfigurationError, match="returned int"):
        [p async for p in reply_text(wrong, _TURN, ())]  # type: ignore[arg-type]
