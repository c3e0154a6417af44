"""The session's states and the only moves between them, so a bug shows up as an error, not a hang."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from beluga_voice.errors import BelugaError


class SessionState(StrEnum):
    """Where a conversation stands."""

    IDLE = "idle"
    """Created, not started."""
    LISTENING = "listening"
    """Streaming audio to the provider; nobody is speaking."""
    USER_SPEAKING = "user_speaking"
    """A user turn is open: speech was transcribed and the turn has not ended yet."""
    PROCESSING = "processing"
    """The agent is working on a reply and has produced nothing yet."""
    AGENT_SPEAKING = "agent_speaking"
    """The agent's reply is being produced (and spoken, with a TTS hook)."""
    ENDED = "ended"
    """Stopped; no audio is accepted any more."""


_ACTIVE = {
    SessionState.LISTENING,
    SessionState.USER_SPEAKING,
    SessionState.PROCESSING,
    SessionState.AGENT_SPEAKING,
}

ALLOWED_TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.IDLE: frozenset({SessionState.LISTENING, SessionState.ENDED}),
    SessionState.LISTENING: frozenset(
        {SessionState.USER_SPEAKING, SessionState.PROCESSING, SessionState.ENDED}
    ),
    SessionState.USER_SPEAKING: frozenset(
        {SessionState.LISTENING, SessionState.PROCESSING, SessionState.ENDED}
    ),
    SessionState.PROCESSING: frozenset(_ACTIVE - {SessionState.PROCESSING} | {SessionState.ENDED}),
    SessionState.AGENT_SPEAKING: frozenset(_ACTIVE - {SessionState.AGENT_SPEAKING} | {SessionState.ENDED}),
    SessionState.ENDED: frozenset(),
}
"""Every permitted move. Agent states return to listening, to a user turn (barge-in), or to the
next queued reply; nothing leaves ``ENDED``."""


class SessionStateError(BelugaError):
    """A call or a state change that the session's current state does not allow."""

    code = "session_state"


StateListener = Callable[[SessionState, SessionState], None]


class StateMachine:
    """Holds the current state and refuses moves that :data:`ALLOWED_TRANSITIONS` does not list."""

    def __init__(self, on_change: StateListener | None = None) -> None:
        self._state = SessionState.IDLE
        self._on_change = on_change

    @property
    def state(self) -> SessionState:
        return self._state

    def move_to(self, new: SessionState) -> bool:
        """Change state (a move to the current state is a no-op); returns whether it changed."""
        old = self._state
        if new == old:
            return False
        if new not in ALLOWED_TRANSITIONS[old]:
            allowed = ", ".join(sorted(s.value for s in ALLOWED_TRANSITIONS[old])) or "none"
            raise SessionStateError(
                f"invalid session state change {old.value} -> {new.value} (allowed: {allowed})"
            )
        self._state = new
        if self._on_change is not None:
            self._on_change(old, new)
        return True
