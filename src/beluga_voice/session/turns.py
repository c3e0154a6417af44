"""Turn-taking, sans I/O: transcript results in, finished user turns out.

A turn collects final words until the provider is done with the current utterance and no new
speech shows up for ``end_of_turn_silence`` seconds, or until a different speaker talks. Times the
tracker is given (``now``) are monotonic wall-clock seconds; times in results are media seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from beluga_voice.stt.model import TranscriptResult, Word, join_words

Role = Literal["user", "agent"]

CONTINUATION_GRACE = 2.0
"""Extra seconds a turn waits when the provider finalised only part of the speech its partials
showed (it cut the utterance and the rest comes as a new result); if the rest never comes
(the words were retracted), the turn still ends."""
_TIMING_SLACK = 0.3  # partial and final word times of the same speech differ by up to this

AGENT_SPEAKER = "agent"
"""The speaker label of the agent's own turns in the history."""


@dataclass(frozen=True)
class Turn:
    """One entry of the conversation: who spoke (``role`` and ``speaker``), what, and when.

    ``start``/``end`` are media seconds on the session's audio timeline. User turns carry the
    provider's speaker label (``None`` without diarization) and their final words; agent turns carry
    ``speaker="agent"`` and the text produced before they ended or were interrupted.
    """

    index: int
    role: Role
    speaker: str | None
    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()
    interrupted: bool = False


@dataclass(frozen=True)
class TurnMetrics:
    """Latencies of one user turn, in wall-clock seconds from the moment the end of speech was
    received by the session (``None`` when it did not happen, e.g. no agent)."""

    turn_index: int
    speech_end: float
    """Media time of the last word of the turn."""
    final_latency: float | None
    """End of speech to the final result holding its last word."""
    turn_latency: float | None
    """End of speech to the turn being complete (what an agent waits for)."""
    reply_latency: float | None = None
    """End of speech to the agent's first output."""


@dataclass
class TurnDraft:
    """A user turn still growing (or just finished, before it enters the history)."""

    speaker: str | None
    start: float
    end: float
    words: list[Word] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    final_received_at: float | None = None

    @property
    def text(self) -> str:
        return " ".join(p for p in self.parts if p).strip()

    def add_words(self, run: Sequence[Word], received_at: float | None) -> None:
        spoken = [w for w in run if not w.is_punctuation] or list(run)
        if not self.words and not self.parts:
            self.start = spoken[0].start
        self.end = max(self.end, spoken[-1].end)
        if self.speaker is None:
            self.speaker = next((w.speaker for w in spoken if w.speaker is not None), None)
        self.words.extend(run)
        self.parts.append(join_words(run))
        self.final_received_at = received_at

    def add_text(self, result: TranscriptResult, received_at: float | None) -> None:
        if not self.words and not self.parts:
            self.start = result.start
        self.end = max(self.end, result.end)
        self.parts.append(result.text)
        self.final_received_at = received_at


@dataclass(frozen=True)
class TrackerUpdate:
    """What one result changed, for the session to announce in order."""

    speech_started: bool = False
    speech_ended: bool = False
    finished: tuple[TurnDraft, ...] = ()


class TurnTracker:
    """Decides when a user turn is over; knows nothing about clocks, tasks or callbacks."""

    def __init__(self, end_of_turn_silence: float) -> None:
        self.end_of_turn_silence = end_of_turn_silence
        self._pending: TurnDraft | None = None
        self._open_partial: TranscriptResult | None = None
        self._in_speech = False
        self._last_speech_seen: float | None = None
        self._heard_until = 0.0  # media time of the latest speech any result showed

    @property
    def has_open_turn(self) -> bool:
        """Someone is speaking or a turn awaits its closing silence."""
        return self._in_speech or self._pending is not None

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def deadline(self) -> float | None:
        """When the pending turn ends if no new speech arrives (``None``: not waiting)."""
        if self._pending is None or self._in_speech or self._last_speech_seen is None:
            return None
        deadline = self._last_speech_seen + self.end_of_turn_silence
        if self._heard_until > self._pending.end + _TIMING_SLACK:
            deadline += CONTINUATION_GRACE  # speech heard in partials is not final yet
        return deadline

    def on_result(self, result: TranscriptResult, now: float) -> TrackerUpdate:
        """Take one result (times already on the session timeline) arriving at ``now``."""
        if _has_speech(result):
            spoken = [w for w in result.words if not w.is_punctuation]
            self._heard_until = max(self._heard_until, spoken[-1].end if spoken else result.end)
        if result.is_partial:
            return self._on_partial(result, now)
        return self._on_final(result, now)

    def on_deadline(self, now: float) -> TurnDraft | None:
        """The turn, if its silence has run out by ``now``."""
        deadline = self.deadline
        if deadline is None or now < deadline:
            return None
        return self._take_pending()

    def flush(self, now: float) -> TurnDraft | None:
        """End of input: whatever was said is a turn, including an utterance never finalised."""
        if self._open_partial is not None and _has_speech(self._open_partial):
            self._append(self._open_partial, now)
        self._open_partial = None
        self._in_speech = False
        return self._take_pending() if self._pending is not None else None

    def _on_partial(self, result: TranscriptResult, now: float) -> TrackerUpdate:
        if not _has_speech(result):
            if self._open_partial is not None and result.result_id == self._open_partial.result_id:
                self._open_partial = None  # withdrawn: a failed stream's words come again, re-decoded
            return TrackerUpdate()
        started = not self._in_speech
        finished = self._close_before(result) if started else ()
        self._in_speech = True
        self._open_partial = result
        self._last_speech_seen = now
        return TrackerUpdate(speech_started=started, finished=finished)

    def _on_final(self, result: TranscriptResult, now: float) -> TrackerUpdate:
        started = not self._in_speech and _has_speech(result)
        ended = self._in_speech or started
        if started or self._open_partial is None:
            self._last_speech_seen = now
        finished = list(self._close_before(result)) if started else []
        if _has_speech(result):
            finished += self._append(result, now)
        self._open_partial = None
        self._in_speech = False
        return TrackerUpdate(speech_started=started, speech_ended=ended, finished=tuple(finished))

    def _close_before(self, result: TranscriptResult) -> tuple[TurnDraft, ...]:
        """New speech ends the pending turn if another speaker talks or if the audio between them
        holds the whole end-of-turn silence (results may arrive back to back when audio is fed
        faster than real time, or when the provider lags, but the pause was there)."""
        pending = self._pending
        if pending is None:
            return ()
        if (
            _other_speaker(pending.speaker, result.speaker)
            or result.start - pending.end >= self.end_of_turn_silence
        ):
            return (self._take_pending(),)
        return ()

    def _append(self, result: TranscriptResult, now: float) -> list[TurnDraft]:
        """Add a result's words to the pending turn, closing it at every change of speaker."""
        finished: list[TurnDraft] = []
        if not result.words:
            if self._pending is not None and _other_speaker(self._pending.speaker, result.speaker):
                finished.append(self._take_pending())
            self._draft(result.speaker, result.start).add_text(result, now)
            return finished
        for speaker, run in speaker_runs(result.words):
            if self._pending is not None and _other_speaker(self._pending.speaker, speaker):
                finished.append(self._take_pending())
            self._draft(speaker, run[0].start).add_words(run, now)
        return finished

    def _draft(self, speaker: str | None, start: float) -> TurnDraft:
        if self._pending is None:
            self._pending = TurnDraft(speaker=speaker, start=start, end=start)
        return self._pending

    def _take_pending(self) -> TurnDraft:
        draft = self._pending
        if draft is None:
            raise RuntimeError("TurnTracker: no pending turn to take (a bug in the tracker)")
        self._pending = None
        return draft


def speaker_runs(words: Iterable[Word]) -> list[tuple[str | None, list[Word]]]:
    """Split words into runs of one speaker; unlabelled punctuation belongs to the run it ends."""
    runs: list[tuple[str | None, list[Word]]] = []
    for word in words:
        speaker = word.speaker
        if runs and (speaker is None or speaker == runs[-1][0]):
            runs[-1][1].append(word)
            continue
        if runs and runs[-1][0] is None and not any(not w.is_punctuation for w in runs[-1][1]):
            runs[-1] = (speaker, [*runs[-1][1], word])
            continue
        runs.append((speaker, [word]))
    return runs


def _other_speaker(current: str | None, new: str | None) -> bool:
    """A different, known speaker; an unlabelled result continues whoever is talking."""
    return current is not None and new is not None and new != current


def _has_speech(result: TranscriptResult) -> bool:
    return bool(result.text.strip()) or any(not w.is_punctuation for w in result.words)
