"""What a session tells the application, as plain frozen dataclasses.

Subscribe with ``session.on(EventType, callback)`` (``SessionEvent`` for all of them) or read
``async for event in session.events()``; both see the same events in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from beluga_voice.session.state import SessionState
from beluga_voice.session.turns import Turn, TurnMetrics
from beluga_voice.stt.model import TranscriptResult
from beluga_voice.stt.provider import ConnectionEvent


@dataclass(frozen=True)
class SessionEvent:
    """Base of every session event."""


@dataclass(frozen=True)
class StateChanged(SessionEvent):
    """The session moved from ``old`` to ``new`` (see :class:`SessionState`)."""

    old: SessionState
    new: SessionState


@dataclass(frozen=True)
class SpeechStarted(SessionEvent):
    """The provider heard the start of an utterance at media time ``start``."""

    start: float
    speaker: str | None


@dataclass(frozen=True)
class PartialTranscript(SessionEvent):
    """An interim hypothesis; later partials of the same ``result.result_id`` replace it."""

    result: TranscriptResult

    @property
    def text(self) -> str:
        return self.result.text

    @property
    def speaker(self) -> str | None:
        return self.result.speaker


@dataclass(frozen=True)
class FinalTranscript(SessionEvent):
    """A result the provider will not revise.

    ``latency`` is wall-clock seconds from receiving the audio of its end to receiving it.
    """

    result: TranscriptResult
    latency: float | None

    @property
    def text(self) -> str:
        return self.result.text

    @property
    def speaker(self) -> str | None:
        return self.result.speaker


@dataclass(frozen=True)
class SpeechEnded(SessionEvent):
    """The utterance that started with :class:`SpeechStarted` was finalised, ending at ``end``."""

    end: float
    speaker: str | None


@dataclass(frozen=True)
class UserTurnCompleted(SessionEvent):
    """A user finished a turn: speaker-attributed text with its times, now in the history."""

    turn: Turn
    metrics: TurnMetrics


@dataclass(frozen=True)
class AgentReplyStarted(SessionEvent):
    """The agent produced the first text of its reply to ``turn``."""

    turn: Turn
    latency: float | None
    """Wall-clock seconds from the end of the user's speech to this first output."""


@dataclass(frozen=True)
class AgentTextDelta(SessionEvent):
    """One piece of the agent's reply text, as the agent produced it."""

    turn: Turn
    text: str


@dataclass(frozen=True)
class AgentReplyCompleted(SessionEvent):
    """The agent's reply ended (``reply.interrupted`` when barge-in cut it); it is in the history."""

    reply: Turn
    reply_to: Turn


@dataclass(frozen=True)
class Interruption(SessionEvent):
    """The user spoke over the agent (barge-in); the agent's reply is being cancelled."""

    reply_to: Turn
    agent_text: str
    """What the agent had produced before it was cut off."""
    user_text: str
    """The user speech that interrupted, as transcribed so far."""
    at: float
    """Media time at which the interrupting speech started."""


@dataclass(frozen=True)
class ConnectionChanged(SessionEvent):
    """The provider's connection changed (reconnects, fallbacks), or the session restarted it."""

    event: ConnectionEvent


ErrorSource = Literal["stt", "agent", "tts", "audio_sink", "audio_source", "callback"]


@dataclass(frozen=True)
class SessionError(SessionEvent):
    """Something failed. ``fatal`` errors end the session; the others (an agent, TTS or sink
    failure, a failing callback) are reported and the session keeps listening."""

    error: BaseException
    source: ErrorSource
    fatal: bool


EndReason = Literal["stopped", "input_ended", "inactivity_timeout", "error"]


@dataclass(frozen=True)
class SessionEnded(SessionEvent):
    """The last event of a session: every result, turn and reply was delivered before it."""

    reason: EndReason
    history: tuple[Turn, ...]
