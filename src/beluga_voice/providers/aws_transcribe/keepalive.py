"""Silence and stalls, decided from the clock alone (the runner in ``client.py`` does the I/O).

* :class:`IdleScheduler` - while the application sends no audio: when to send keep-alive silence
  (``keepalive`` mode) or to close the connection until audio resumes (``lazy`` mode).
* :class:`ResultWatchdog` - a connection that takes speech but answers nothing for too long is
  stuck (a black-holed socket, a wedged service): it is replaced. After the end of the audio, the
  same watch bounds the wait for the service to finish.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

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


class ResultWatchdog:
    """Notices a connection that answers nothing while it should.

    The clock starts at the first speech chunk sent after the last message received (silence
    legitimately gets no answer), or at the end of the audio (the service then owes its last
    results and a close).
    """

    def __init__(self, timeout: float | None, drain_timeout: float) -> None:
        self.timeout = timeout
        self.drain_timeout = drain_timeout
        self.stalled = False
        """The speech rule fired (not the drain rule)."""
        self._speech_since: float | None = None
        self._ended_at: float | None = None
        self._last_message: float | None = None

    def audio(self, now: float, speech: bool) -> None:
        if speech and self._speech_since is None and self.timeout is not None:
            self._speech_since = now

    def message(self, now: float) -> None:
        self._last_message = now
        self._speech_since = None

    def ended(self, now: float) -> None:
        self._ended_at = now

    def deadline(self) -> float | None:
        """When the connection counts as stuck if nothing arrives before."""
        deadlines = [self._drain_deadline(), self._speech_deadline()]
        return min((d for d in deadlines if d is not None), default=None)

    def _drain_deadline(self) -> float | None:
        if self._ended_at is None:
            return None
        return max(self._ended_at, self._last_message or -math.inf) + self.drain_timeout

    def _speech_deadline(self) -> float | None:
        if self._speech_since is None or self.timeout is None:
            return None
        return self._speech_since + self.timeout

    def check(self, now: float) -> BelugaError | None:
        """The error to replace the connection with, once its deadline has passed."""
        speech = self._speech_deadline()
        if speech is not None and now >= speech:
            self.stalled = True
            return StreamTimeoutError(
                f"the service returned nothing for {self.timeout:g} s while speech was being sent; "
                "the connection is stuck"
            )
        drain = self._drain_deadline()
        if drain is not None and now >= drain:
            return StreamTimeoutError(
                f"the service sent nothing for {self.drain_timeout:g} s after the end of the audio and "
                "did not close the stream; the last results may be missing"
            )
        return None


def is_speech(pcm: bytes, threshold_dbfs: float) -> bool:
    """Whether a chunk of s16le PCM is louder than ``threshold_dbfs`` (RMS, dB full scale)."""
    samples = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2)
    if not samples.size:
        return False
    power = float(np.dot(samples.astype(np.float32), samples.astype(np.float32))) / samples.size
    return power > (32768.0 * 10 ** (threshold_dbfs / 20)) ** 2
