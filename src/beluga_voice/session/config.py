"""Session settings: one frozen, validated object with defaults a voice agent can start from."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field

from beluga_voice.errors import ConfigurationError


def _new_session_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class SessionConfig:
    """How a :class:`~beluga_voice.session.VoiceSession` listens, takes turns and recovers.

    Times are seconds. Every field has a default, so ``SessionConfig()`` is a working session.
    """

    session_id: str = field(default_factory=_new_session_id)
    """Names the session in events, logs and metrics (a fresh UUID4 by default)."""

    inactivity_timeout: float | None = 300.0
    """End the session after this long without any transcript or agent output (``None``: never).

    Streamed audio is billed by cloud providers even when nobody speaks, so an abandoned microphone
    session should not run forever."""

    keep_alive: bool = True
    """Feed silence to the provider while the application sends no audio (muted microphone, a paused
    call), so a cloud stream is not closed for idleness and end-of-utterance detection still sees
    the pause and finalises the last words."""

    keep_alive_after: float = 1.0
    """How far the wall clock may run ahead of the audio received before silence is fed.

    Audio fed faster than real time (files) is never padded; a live source that stalls longer than
    this gets silence for the gap."""

    max_retries: int = 3
    """How often the session reopens the provider's stream after a retryable error the provider
    could not absorb itself; the audio not yet covered by final results is replayed."""

    replay_seconds: float = 30.0
    """Most audio kept for replay after such an error (the tail since the last final result)."""

    end_of_turn_silence: float = 0.6
    """A user turn ends when the provider's results are final and no new speech was seen for this
    long (a change of speaker ends a turn at once)."""

    barge_in: bool = True
    """Let user speech interrupt the agent: cancel its reply and raise an ``Interruption`` event."""

    barge_in_min_words: int = 2
    """Words the user must say while the agent replies before it counts as an interruption
    (a cough or a lone "uh" should not cut the agent off)."""

    barge_in_min_duration: float = 0.4
    """Seconds of user speech, measured on the transcript, before it counts as an interruption."""

    input_queue_size: int = 100
    """Audio pieces buffered between the application and the provider; ``process_audio`` waits
    when the provider falls this far behind (backpressure instead of unbounded memory)."""

    def __post_init__(self) -> None:
        if not isinstance(self.session_id, str) or not self.session_id.strip():
            raise ConfigurationError("SessionConfig.session_id must be a non-empty string (or left default).")
        if self.inactivity_timeout is not None:
            _positive("inactivity_timeout", self.inactivity_timeout, "use None to never time out")
        _positive("keep_alive_after", self.keep_alive_after)
        _positive("replay_seconds", self.replay_seconds)
        _non_negative("end_of_turn_silence", self.end_of_turn_silence)
        _non_negative("barge_in_min_duration", self.barge_in_min_duration)
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigurationError(
                f"SessionConfig.max_retries must be a whole number >= 0, got {self.max_retries!r}; "
                "use 0 to never reopen the stream."
            )
        if not isinstance(self.barge_in_min_words, int) or self.barge_in_min_words < 1:
            raise ConfigurationError(
                f"SessionConfig.barge_in_min_words must be a whole number >= 1, got "
                f"{self.barge_in_min_words!r}; use barge_in=False to disable interruptions."
            )
        if not isinstance(self.input_queue_size, int) or self.input_queue_size < 1:
            raise ConfigurationError(
                f"SessionConfig.input_queue_size must be a whole number >= 1, got {self.input_queue_size!r}."
            )


def _number(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"SessionConfig.{name} must be a finite number of seconds, got {value!r}.")
    return float(value)


def _positive(name: str, value: float, hint: str = "") -> None:
    if _number(name, value) <= 0:
        extra = f"; {hint}" if hint else ""
        raise ConfigurationError(f"SessionConfig.{name} must be greater than 0, got {value!r}{extra}.")


def _non_negative(name: str, value: float) -> None:
    if _number(name, value) < 0:
        raise ConfigurationError(f"SessionConfig.{name} must be 0 or more, got {value!r}.")
