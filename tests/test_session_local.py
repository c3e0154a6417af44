"""Voice sessions end to end: the real local engine on real speech (one and two speakers).

Conversations are stitched from real utterances of two different readers (librivox/ and cards/)
with pauses, so the expected turns, speakers and times are known exactly. Audio is fed faster than
real time wherever the behaviour under test allows; the model is the slow part.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from beluga_voice.audio import Audio, chunk_bytes, iter_chunks, paced, read_audio
from beluga_voice.errors import (
    AudioFormatError,
    BelugaError,
    ConfigurationError,
    ServiceError,
    StreamConnectionError,
)
from beluga_voice.providers.local import LocalSTT
from beluga_voice.session import (
    ALLOWED_TRANSITIONS,
    Agent,
    AgentReplyCompleted,
    AgentReplyStarted,
    ConnectionChanged,
    FinalTranscript,
    Interruption,
    PartialTranscript,
    SessionConfig,
    SessionEnded,
    SessionError,
    SessionEvent,
    SessionState,
    SessionStateError,
    SpeechEnded,
    SpeechStarted,
    StateChanged,
    Turn,
    UserTurnCompleted,
    VoiceSession,
    create_voice_session,
)
from beluga_voice.stt.model import TranscriptResult
from beluga_voice.stt.provider import AudioStream, ConnectionListener, STTProvider
from beluga_voice.telemetry import MetricSpec, Telemetry

pytestmark = pytest.mark.model
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RATE = 16000
CHUNK = chunk_bytes(RATE)
LIBRIVOX = "librivox/sense_and_sensibility_01_austen_64kb-0{}.wav"


# -- real speech, stitched into conversations ----------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    """One reader's turn in a stitched conversation, and where it lies in the audio."""

    reader: str
    words: tuple[str, ...]
    start: float
    end: float


@dataclass(frozen=True)
class Conversation:
    pcm: bytes
    utterances: tuple[Utterance, ...]

    @property
    def duration(self) -> float:
        return len(self.pcm) / (2 * RATE)


def _reference(data_dir: Path) -> dict[str, str]:
    """File name -> reference words, from the datasets' own transcription files."""
    refs: dict[str, str] = {}
    for listing in (data_dir / "librivox" / "transcription", data_dir / "cards" / "cards.transcription"):
        for line in listing.read_text().splitlines():
            match = re.match(r"<s>(.*)</s>\s*\((.+)\)", line.strip())
            if match:
                refs[match.group(2)] = match.group(1).strip()
    return refs


def stitch(data_dir: Path, turns: Sequence[Sequence[str]], pause: float = 1.2) -> Conversation:
    """Turns of one or more files each (files of a turn 0.15 s apart), ``pause`` between turns."""
    refs = _reference(data_dir)
    pieces: list[np.typing.NDArray[np.float32]] = []
    utterances: list[Utterance] = []
    position = 0

    def add(samples: np.typing.NDArray[np.float32]) -> None:
        nonlocal position
        pieces.append(samples)
        position += samples.size

    for files in turns:
        add(np.zeros(int(pause * RATE), np.float32))
        start, words = position / RATE, []
        for i, name in enumerate(files):
            if i:
                add(np.zeros(int(0.15 * RATE), np.float32))
            add(read_audio(data_dir / name).convert(RATE).samples[:, 0])
            words += refs[Path(name).stem].split()
        reader = "librivox" if files[0].startswith("librivox") else "cards"
        utterances.append(Utterance(reader, tuple(words), start, position / RATE))
    add(np.zeros(RATE, np.float32))
    audio = Audio(np.concatenate(pieces).reshape(-1, 1), RATE, "stitched")
    return Conversation(audio.to_pcm16(), tuple(utterances))


_NUMBERS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
]


def normalise(text: str) -> list[str]:
    """Lower-case words; Whisper writes small numbers as digits ("4. Queen"), references spell them."""
    words = re.findall(r"[a-z']+|\d+", text.lower())
    return [_NUMBERS[int(w)] if w.isdigit() and int(w) < len(_NUMBERS) else w for w in words]


def coverage(reference: Sequence[str], text: str) -> float:
    """Share of the reference words found in ``text`` (Whisper tiny.en is not perfect)."""
    said = set(normalise(text))
    return sum(word in said for word in reference) / len(reference)


# -- running a session ---------------------------------------------------------------------------


@dataclass
class Recording:
    session: VoiceSession
    events: list[SessionEvent] = field(default_factory=list)

    def of(self, kind: type[SessionEvent]) -> list[int]:
        return [i for i, e in enumerate(self.events) if isinstance(e, kind)]

    @property
    def user_turns(self) -> list[Turn]:
        return [t for t in self.session.history if t.role == "user"]

    @property
    def finals(self) -> list[TranscriptResult]:
        return [e.result for e in self.events if isinstance(e, FinalTranscript)]


def record(session: VoiceSession) -> Recording:
    recording = Recording(session)
    session.on(SessionEvent, recording.events.append)
    return recording


async def feed(session: VoiceSession, pcm: bytes, speed: float | None = None) -> None:
    """Attach ``pcm`` (paced at ``speed`` x real time, or as fast as the session takes it) and
    wait for the session to drain and end."""
    chunks = iter_chunks(pcm, CHUNK)
    session.attach(paced(chunks, RATE, speed=speed) if speed else chunks)
    await asyncio.wait_for(session.wait_closed(), timeout=240)


@pytest.fixture(scope="module")
def stt() -> LocalSTT:
    return LocalSTT()


@pytest.fixture(scope="module")
def stt_speakers() -> LocalSTT:
    return LocalSTT(show_speaker_label=True)


def two_reader_dialogue(data_dir: Path) -> Conversation:
    """Two readers taking turns (the cards reader's 1.5 s utterances go in pairs: shorter speech
    is too little for the local engine to tell voices apart)."""
    return stitch(
        data_dir,
        [
            [LIBRIVOX.format(880)],
            ["cards/005.wav"],
            [LIBRIVOX.format(930)],
            ["cards/002.wav", "cards/003.wav"],
            [LIBRIVOX.format(890)],
        ],
    )


@pytest.fixture(scope="module")
def dialogue(data_dir: Path) -> Conversation:
    return two_reader_dialogue(data_dir)


@pytest.fixture(scope="module")
def dialogue_run(stt_speakers: LocalSTT, dialogue: Conversation) -> tuple[Recording, list[SessionEvent]]:
    """One session over the two-reader dialogue, read through callbacks and ``events()`` at once."""

    async def run() -> tuple[Recording, list[SessionEvent]]:
        session = create_voice_session(stt_speakers, SessionConfig(keep_alive=False))
        recording = record(session)
        iterated: list[SessionEvent] = []

        async def read() -> None:
            async for event in session.events():
                iterated.append(event)

        reader = asyncio.create_task(read())
        await session.start()
        await feed(session, dialogue.pcm, speed=1.5)  # live-like, so the engine has time for partials
        await asyncio.wait_for(reader, 10)
        return recording, iterated

    return asyncio.run(run())


# -- turns, speakers, order, nothing lost --------------------------------------------------------


def assert_turns_follow(recording: Recording, conversation: Conversation) -> None:
    """One turn per utterance, in order, with the right words, times and one label per reader."""
    turns = recording.user_turns
    assert len(turns) == len(conversation.utterances), [(t.speaker, t.text) for t in turns]
    labels: dict[str, str] = {}
    for turn, utterance in zip(turns, conversation.utterances, strict=True):
        assert turn.speaker is not None
        assert labels.setdefault(utterance.reader, turn.speaker) == turn.speaker, (turn.speaker, turn.text)
        assert coverage(utterance.words, turn.text) >= 0.6, (utterance.words, turn.text)
        assert utterance.start - 0.5 <= turn.start < turn.end <= utterance.end + 0.5
    assert labels["librivox"] != labels["cards"]
    assert [t.index for t in recording.session.history] == list(range(len(turns)))


def assert_events_in_order(recording: Recording) -> None:
    """Partials before their final, finals before the turn holding their words, speech start/end
    paired, and the end last."""
    events = recording.events
    final_at = {e.result.result_id: i for i, e in enumerate(events) if isinstance(e, FinalTranscript)}
    # (An empty partial withdraws one of a failed stream; its words come again under a new id.)
    partials = [(i, e) for i, e in enumerate(events) if isinstance(e, PartialTranscript) and e.text]
    assert partials, "the provider sends partial results while someone speaks"
    for i, partial in partials:
        assert i < final_at[partial.result.result_id], "a partial arrived after its final"
    turn_of_word: dict[tuple[float, str], int] = {}
    for i, event in enumerate(events):
        if isinstance(event, UserTurnCompleted):
            for word in event.turn.words:
                turn_of_word[(word.start, word.text)] = i
    for result_id, i in final_at.items():
        final = events[i]
        assert isinstance(final, FinalTranscript)
        for word in final.result.words:
            assert i < turn_of_word[(word.start, word.text)], f"turn announced before final {result_id}"
    starts, ends = recording.of(SpeechStarted), recording.of(SpeechEnded)
    assert len(starts) == len(ends) == len(final_at)
    assert all(s < e for s, e in zip(starts, ends, strict=True))
    assert isinstance(events[-1], SessionEnded) and events[-1].reason == "input_ended"


def assert_nothing_lost(recording: Recording) -> None:
    """Every final word is in exactly one turn, in order; the last event carries the history."""
    final_words = [w for r in recording.finals for w in r.words]
    turn_words = [w for t in recording.user_turns for w in t.words]
    assert final_words and turn_words == final_words
    ended = recording.events[-1]
    assert isinstance(ended, SessionEnded) and ended.history == recording.session.history


def test_turns_follow_the_conversation_with_the_right_speakers(
    dialogue_run: tuple[Recording, list[SessionEvent]], dialogue: Conversation
) -> None:
    assert_turns_follow(dialogue_run[0], dialogue)


def test_events_come_in_order_partials_finals_then_the_turn(
    dialogue_run: tuple[Recording, list[SessionEvent]],
) -> None:
    assert_events_in_order(dialogue_run[0])


def test_every_final_word_is_in_exactly_one_turn(dialogue_run: tuple[Recording, list[SessionEvent]]) -> None:
    assert_nothing_lost(dialogue_run[0])


def test_callbacks_and_the_event_iterator_see_the_same_events(
    dialogue_run: tuple[Recording, list[SessionEvent]],
) -> None:
    recording, iterated = dialogue_run
    assert iterated == recording.events


def test_state_changes_chain_through_allowed_moves(
    dialogue_run: tuple[Recording, list[SessionEvent]],
) -> None:
    recording, _ = dialogue_run
    changes = [e for e in recording.events if isinstance(e, StateChanged)]
    assert changes[0].old is SessionState.IDLE and changes[-1].new is SessionState.ENDED
    for before, after in itertools.pairwise(changes):
        assert before.new is after.old
    assert all(c.new in ALLOWED_TRANSITIONS[c.old] for c in changes)
    assert SessionState.USER_SPEAKING in {c.new for c in changes}
    assert recording.session.state is SessionState.ENDED


def test_each_turn_reports_its_latencies(dialogue_run: tuple[Recording, list[SessionEvent]]) -> None:
    recording, _ = dialogue_run
    metrics = recording.session.metrics
    assert [m.turn_index for m in metrics] == [t.index for t in recording.user_turns]
    for m, turn in zip(metrics, recording.user_turns, strict=True):
        assert m.speech_end == turn.end
        assert m.final_latency is not None and m.turn_latency is not None
        assert 0 <= m.final_latency <= m.turn_latency
        assert m.reply_latency is None  # no agent in this session


@pytest.fixture(scope="module")
def phone_call(stt_speakers: LocalSTT, data_dir: Path) -> tuple[Recording, list[list[str]]]:
    """A session over the real two-speaker call, and its reference (speaker, start, end, text)."""
    stm = [
        line.split(maxsplit=5)[2:]
        for line in (data_dir / "pyannote" / "sample.stm").read_text().splitlines()
        if line.strip()
    ]

    async def run() -> Recording:
        session = VoiceSession(stt_speakers, SessionConfig(keep_alive=False))
        recording = record(session)
        await session.start()
        await feed(session, read_audio(data_dir / "pyannote" / "sample.wav").convert(RATE).to_pcm16())
        return recording

    return asyncio.run(run()), stm


def test_a_phone_call_becomes_ordered_turns_holding_every_final_word(
    phone_call: tuple[Recording, list[list[str]]],
) -> None:
    recording, stm = phone_call
    turns = recording.user_turns
    assert turns and all(t.speaker is not None for t in turns)
    assert all(a.end <= b.start + 0.05 for a, b in itertools.pairwise(turns))
    assert [w for t in turns for w in t.words] == [w for r in recording.finals for w in r.words]
    said = " ".join(t.text for t in turns)
    assert coverage(normalise(" ".join(ref[3] for ref in stm)), said) >= 0.7


def test_a_phone_calls_turns_are_each_one_voice(phone_call: tuple[Recording, list[list[str]]]) -> None:
    """A change of speaker always ends a turn, so no turn mixes two labels.

    Who said what is checked on the stitched two-reader dialogue above: on this 8 kHz phone call the
    torch-free speaker encoder separates the two voices only some of the time (docs/local-engine.md,
    "Speaker labels"), so the number of labels found here is not asserted.
    """
    recording, _stm = phone_call
    turns = recording.user_turns
    assert turns
    for turn in turns:
        assert {w.speaker for w in turn.words if not w.is_punctuation} <= {turn.speaker, None}


# -- lifecycle -----------------------------------------------------------------------------------


async def test_the_guides_stt_only_session_works_and_stop_loses_nothing(data_dir: Path) -> None:
    session = create_voice_session("local")  # a provider and the default config; no agent, no TTS
    assert session.state.value == "idle" and session.config.session_id
    await session.start()
    pcm = read_audio(data_dir / LIBRIVOX.format(880)).convert(RATE).to_pcm16()
    for piece in iter_chunks(pcm, CHUNK):
        await session.process_audio(piece)
    await session.stop()  # right after the last word: no trailing silence to end the utterance
    turns = session.history
    assert len(turns) == 1 and turns[0].role == "user"
    assert (
        coverage(_reference(data_dir)["sense_and_sensibility_01_austen_64kb-0880"].split(), turns[0].text)
        >= 0.7
    )
    assert session.state is SessionState.ENDED
    with pytest.raises(SessionStateError, match="stopped"):
        await session.process_audio(pcm[:CHUNK])


async def test_keep_alive_lets_the_last_words_finish_while_the_source_is_silent(
    stt: LocalSTT, data_dir: Path
) -> None:
    session = VoiceSession(stt, SessionConfig(keep_alive_after=0.5))
    turns: asyncio.Queue[Turn] = asyncio.Queue()
    session.on(UserTurnCompleted, lambda e: turns.put_nowait(e.turn))
    await session.start()
    pcm = read_audio(data_dir / LIBRIVOX.format(930)).convert(RATE).to_pcm16()
    for piece in iter_chunks(pcm, CHUNK):
        await session.process_audio(piece)
    # The application now sends nothing (a muted microphone) and does not stop the session.
    turn = await asyncio.wait_for(turns.get(), timeout=60)
    assert "amiable" in normalise(turn.text)
    assert session.media_time > len(pcm) / (2 * RATE)  # silence was fed after the speech
    await session.stop()


async def test_a_session_nobody_talks_to_ends_after_the_inactivity_timeout(stt: LocalSTT) -> None:
    session = VoiceSession(stt, SessionConfig(inactivity_timeout=0.5))
    ended: list[SessionEnded] = []
    session.on(SessionEnded, ended.append)
    await session.start()
    await asyncio.wait_for(session.wait_closed(), timeout=30)
    assert [e.reason for e in ended] == ["inactivity_timeout"]


async def test_misuse_gets_clear_errors(stt: LocalSTT) -> None:
    with pytest.raises(ConfigurationError, match="STTProvider"):
        VoiceSession("local")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="audio_sink"):
        VoiceSession(stt, agent=_echo_words(0.0), tts=_silence_tts)
    session = VoiceSession(stt)
    with pytest.raises(SessionStateError, match="start"):
        await session.process_audio(b"\0\0")
    await session.start()
    with pytest.raises(SessionStateError, match="start"):
        await session.start()
    with pytest.raises(AudioFormatError, match="bytes"):
        await session.process_audio(np.zeros(10))  # type: ignore[arg-type]
    session.attach([b"\0\0" * 160], stop_at_end=False)
    with pytest.raises(SessionStateError, match="already attached"):
        session.attach([b"\0\0"])
    await session.stop()
    await session.stop()  # idempotent
    assert session.state is SessionState.ENDED


# -- the agent: replies, speech, barge-in --------------------------------------------------------

WORD_AUDIO = 0.4  # seconds of "speech" the test TTS makes per word


def _echo_words(delay: float) -> Agent:
    """An echo agent that streams the turn's words back one at a time."""

    async def agent(turn: Turn, history: Sequence[Turn]) -> AsyncIterator[str]:
        for word in turn.text.split():
            await asyncio.sleep(delay)
            yield word + " "

    return agent


async def _silence_tts(text: str) -> AsyncIterator[bytes]:
    """Stands in for a TTS engine: WORD_AUDIO seconds of PCM per word, in 100 ms chunks."""
    total = bytes(int(len(text.split()) * WORD_AUDIO * RATE) * 2)
    for piece in iter_chunks(total, CHUNK):
        yield piece


class Measurements:
    """A metric sink, plugged into the telemetry hub the way a Prometheus bridge is."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float, str]] = []

    def record(self, spec: MetricSpec, value: float, attributes: Mapping[str, str]) -> None:
        self.seen.append((spec.name, value, attributes.get("component", "")))

    def values(self, name: str) -> list[float]:
        return [value for metric, value, component in self.seen if metric == name and component == "session"]


class Speaker:
    """An audio sink that plays in real time, like a loudspeaker would."""

    def __init__(self) -> None:
        self.played = 0

    async def __call__(self, chunk: bytes) -> None:
        await asyncio.sleep(len(chunk) / (2 * RATE))
        self.played += len(chunk)


async def test_user_speech_over_the_agent_interrupts_it(stt: LocalSTT, data_dir: Path) -> None:
    talk = stitch(data_dir, [[LIBRIVOX.format(870)], ["cards/005.wav"]], pause=4.0)
    speaker = Speaker()
    telemetry, measured = Telemetry(), Measurements()
    telemetry.add_sink(measured)
    session = VoiceSession(
        stt,
        SessionConfig(),
        agent=_echo_words(0.0),
        tts=_silence_tts,
        audio_sink=speaker,
        telemetry=telemetry,
    )
    recording = record(session)
    await session.start()
    await feed(session, talk.pcm, speed=2.0)

    interruptions = [recording.events[i] for i in recording.of(Interruption)]
    assert len(interruptions) == 1
    first, second = recording.user_turns
    interruption = interruptions[0]
    assert isinstance(interruption, Interruption) and interruption.reply_to == first
    assert interruption.at >= first.end  # it was the next speech, not the turn being answered
    replies = [t for t in session.history if t.role == "agent"]
    assert [r.interrupted for r in replies] == [True, False]
    cut, full = replies
    assert first.text.startswith(cut.text.strip()) and len(cut.text.split()) <= len(first.text.split())
    assert full.text.split() == second.text.split()
    # The first reply's audio stopped early; the second was played to the end.
    expected_full = sum(len(s.split()) for s in [first.text, second.text]) * WORD_AUDIO * 2 * RATE
    assert speaker.played < expected_full
    assert speaker.played >= len(second.text.split()) * WORD_AUDIO * 2 * RATE
    # States went through the agent's and back to the user on barge-in.
    moves = [(e.old, e.new) for e in recording.events if isinstance(e, StateChanged)]
    assert (SessionState.PROCESSING, SessionState.AGENT_SPEAKING) in moves
    assert (SessionState.AGENT_SPEAKING, SessionState.USER_SPEAKING) in moves
    metrics = session.metrics
    assert all(m.reply_latency is not None and m.reply_latency >= 0 for m in metrics)
    # Operators see the same through the shared metric names.
    assert measured.values("beluga.session.turns") == [1, 1]
    assert measured.values("beluga.session.interruptions") == [1]
    assert measured.values("beluga.session.reply_latency") == pytest.approx(
        [m.reply_latency for m in metrics]
    )


async def test_speech_below_the_barge_in_threshold_does_not_interrupt(stt: LocalSTT, data_dir: Path) -> None:
    talk = stitch(data_dir, [[LIBRIVOX.format(880)], ["cards/005.wav"]], pause=3.0)
    config = SessionConfig(barge_in_min_words=50)
    session = VoiceSession(stt, config, agent=_echo_words(0.8))
    recording = record(session)
    await session.start()
    await feed(session, talk.pcm, speed=2.0)
    events = recording.events
    (started,) = [i for i in recording.of(AgentReplyStarted) if events[i].turn.index == 0]  # type: ignore[attr-defined]
    completed = next(i for i in recording.of(AgentReplyCompleted) if events[i].reply_to.index == 0)  # type: ignore[attr-defined]
    heard = recording.of(PartialTranscript) + recording.of(FinalTranscript)
    overlapping = [i for i in heard if started < i < completed]
    assert overlapping, "the user must have spoken while the agent replied for this test to mean anything"
    assert recording.of(Interruption) == []
    replies = [t for t in session.history if t.role == "agent"]
    assert [r.interrupted for r in replies] == [False, False]
    assert [r.text.split() for r in replies] == [t.text.split() for t in recording.user_turns]


# -- failures ------------------------------------------------------------------------------------


class DropsAfterFirstFinal(STTProvider):
    """A provider whose first stream fails right after its first final, as a network stream might
    when its connection is reset; it wraps the real local engine."""

    name = "drops-once"

    def __init__(self, inner: LocalSTT, error: BelugaError) -> None:
        self.inner = inner
        self.error = error
        self.streams = 0

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    async def stream(
        self, audio: AudioStream, *, on_connection_event: ConnectionListener | None = None
    ) -> AsyncIterator[TranscriptResult]:
        self.streams += 1
        failing = self.streams == 1
        inner = cast(AsyncGenerator[TranscriptResult, None], self.inner.stream(audio))
        async with contextlib.aclosing(inner) as results:
            async for result in results:
                yield result
                if failing and result.is_final:
                    raise self.error


@pytest.fixture(scope="module")
def three_turns(data_dir: Path) -> Conversation:
    return stitch(data_dir, [[LIBRIVOX.format(880)], ["cards/005.wav"], [LIBRIVOX.format(930)]])


async def test_a_retryable_failure_reopens_the_stream_and_loses_no_words(
    stt: LocalSTT, three_turns: Conversation
) -> None:
    provider = DropsAfterFirstFinal(stt, StreamConnectionError("connection reset by peer"))
    session = VoiceSession(provider, SessionConfig(keep_alive=False))
    recording = record(session)
    await session.start()
    await feed(session, three_turns.pcm)

    assert provider.streams == 2 and session.error is None
    kinds = [e.event.kind for e in recording.events if isinstance(e, ConnectionChanged)]
    assert kinds == ["reconnecting", "reconnected"]
    turns = recording.user_turns
    texts = " ".join(t.text for t in turns)
    for utterance in three_turns.utterances:
        assert coverage(utterance.words, texts) >= 0.6, (utterance.words, texts)
    words = [w for t in turns for w in t.words if not w.is_punctuation]
    assert all(a.start <= b.start for a, b in itertools.pairwise(words)), "time went backwards"
    assert normalise(texts).count("young") == 1  # the finalised first turn was not replayed
    # The replayed audio kept its place on the session's timeline.
    second = three_turns.utterances[1]
    cards_words = [w for w in words if w.text.lower().strip(",.") in {"spades", "hearts"}]
    assert cards_words and all(second.start - 0.3 <= w.start <= second.end + 0.3 for w in cards_words)


async def test_a_fatal_provider_error_ends_the_session_and_keeps_what_was_said(
    stt: LocalSTT, three_turns: Conversation
) -> None:
    error = ServiceError("BadRequestException", "the request was refused")
    session = VoiceSession(DropsAfterFirstFinal(stt, error), SessionConfig(keep_alive=False))
    recording = record(session)
    await session.start()
    with pytest.raises(ServiceError):
        await feed(session, three_turns.pcm)
    errors = [e for e in recording.events if isinstance(e, SessionError)]
    assert [(e.source, e.fatal, e.error) for e in errors] == [("stt", True, error)]
    assert isinstance(recording.events[-1], SessionEnded) and recording.events[-1].reason == "error"
    assert "young" in normalise(" ".join(t.text for t in recording.user_turns))
    with pytest.raises(SessionStateError, match="BadRequestException"):
        await session.process_audio(b"\0\0")
