"""Silence and stalls, decided from the clock alone (the runner in ``client.py`` does the I/O).

* :class:`IdleScheduler` - while the application sends no audio: when to send keep-alive silence
  (``keepalive`` mode) or to close the connection until audio resumes (``lazy`` mode).
* :class:`DrainWatch` - after the end of the audio, a service that neither answers nor closes is
  stuck. While audio flows nothing is judged by the clock here: a dead connection is found by
  websockets' ping/pong keepalive (``ClientOptions.ping_interval``/``ping_timeout``).
"""

from __future__ import annotations

import math
from typing import Literal

from beluga_voice.errors import BelugaError, StreamTimeoutError
from beluga_voice.providers.aws_transcribe.resilience import IdlePolicy

IdleAction = Literal["wait", "keepalive", "close"]


class IdleScheduler:
    """The next idle action: ``("wait", seconds)``, ``("keepalive", 0)`` or ``("close", 0)``."""

    def __init__(self, policy: IdlePolicy, now: float) -> None:
        self.policy = policy
        self.last_audio = now
        self.flushed = 0.0
        self.last_keepalive: float | None = None
        self.parked = False

    def audio(self, now: float) -> None:
        """The application sent audio: the idle period (if any) is over."""
        self.last_audio = now
        self.flushed = 0.0
        self.last_keepalive = None
        self.parked = False

    def next_action(self, now: float) -> tuple[IdleAction, float]:
        policy = self.policy
        if self.parked:
            return "wait", policy.after
        if policy.mode == "lazy":
            close_at = self.last_audio + policy.close_after
            return ("close", 0.0) if now >= close_at else ("wait", close_at - now)
        idle_from = self.last_audio + policy.after
        if now < idle_from:
            return "wait", idle_from - now
        if self.flushed < policy.flush_seconds - 1e-9:
            due = idle_from + self.flushed  # trailing silence at real-time pace
        else:
            due = (self.last_keepalive if self.last_keepalive is not None else idle_from) + policy.interval
        return ("keepalive", 0.0) if now >= due else ("wait", due - now)

    def keepalive_sent(self, now: float, seconds: float) -> None:
        self.flushed += seconds
        self.last_keepalive = now

    def keepalive_skipped(self, now: float) -> None:
        """No connection to keep alive (an outage): look again after one interval."""
        self.flushed = max(self.flushed, self.policy.flush_seconds)
        self.last_keepalive = now

    def closed(self) -> None:
        """The connection was closed for idleness: nothing to do until audio resumes."""
        self.parked = True


class DrainWatch:
    """Bounds the wait for the service to finish after the end of the audio.

    While audio flows, a connection is judged by liveness only (WebSocket pings, TCP, close frames,
    exception frames): a service may legitimately answer nothing for minutes (music, noise, a long
    utterance without partials). After the end of the audio it owes its last results and a close;
    a connection that answers pings but sends nothing and does not close for ``drain_timeout`` is
    stuck, and the stream ends it (see ``StreamRunner``: at most once per stream is it reconnected).
    """

    def __init__(self, drain_timeout: float) -> None:
        self.drain_timeout = drain_timeout
        self._ended_at: float | None = None
        self._last_message: float | None = None

    def message(self, now: float) -> None:
        self._last_message = now

    def ended(self, now: float) -> None:
        self._ended_at = now

    @property
    def ending(self) -> bool:
        return self._ended_at is not None

    def deadline(self) -> float | None:
        """When the connection counts as stuck if nothing arrives before (``None``: audio still flows)."""
        if self._ended_at is None:
            return None
        return max(self._ended_at, self._last_message or -math.inf) + self.drain_timeout

    def check(self, now: float) -> BelugaError | None:
        """The error to end the connection with, once its deadline has passed."""
        deadline = self.deadline()
        if deadline is not None and now >= deadline:
            return StreamTimeoutError(
                f"the service sent nothing for {self.drain_timeout:g} s after the end of the audio and "
                "did not close the stream; the last results may be missing"
            )
        return None
