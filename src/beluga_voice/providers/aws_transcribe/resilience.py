"""What a stream does when its connection fails or falls silent, and what it counts.

:class:`ReconnectPolicy` decides which failures get a new connection and how persistently;
:class:`IdlePolicy` keeps a stream alive through silence; :class:`StreamStats` is what the
application reads afterwards (``provider.last_stream_stats``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from beluga_voice.errors import BelugaError, ConfigurationError
from beluga_voice.stt.timeline import TimelineStats

IdleMode = Literal["keepalive", "lazy"]


@dataclass(frozen=True)
class ReconnectPolicy:
    """Reconnection after retryable failures (dropped connections, service faults, timeouts).

    An *outage* starts at a failure and ends when a new connection proves healthy (it delivered a
    new final result, or stayed up ``healthy_after`` seconds). Within one outage at most
    ``max_attempts`` connections are tried, for at most ``max_outage`` seconds, each after a delay of
    exponential backoff with full jitter (``base_delay``, doubling, at most ``max_delay``). Errors that
    a new connection cannot cure (credentials, parameters, access) are raised at once.

    A connection is replaced only when it is dead (a WebSocket ping unanswered within the
    provider's ``ping_timeout``, a TCP error, a close) or the service says so (an exception frame), never
    because no transcript arrived: a quiet service, music or a long utterance legitimately get no
    answer for a long time. ``overlap_seconds``: audio already transcribed that is replayed before
    the untranscribed rest (0 by default: the replay starts where the last final ended, in the
    pause after an utterance, so the recogniser never decodes a fragment of a word it already
    answered).
    ``speaker_sample_seconds`` (with speaker labels on): a sample of every known speaker (at most
    this long each, at most 6 speakers, 0.5 s of silence after each), replayed first on a new
    connection so its fresh diarization meets them all and their labels can be matched (0
    disables; the samples are billed like replayed audio). 2 s: long enough for a voice print
    (shorter turns are judged less reliably), short enough that with three speakers the samples
    cost 7.5 s per reconnection.

    Unanswered audio leaves the replay buffer only when no replay can need it: when it holds
    ``replay_seconds``, the application's audio source is held while no connection is up, while
    the live connection has been sent audio ahead of real time, and during an outage (from a
    failure until a connection delivers a new final or has been up ``healthy_after`` seconds). A
    live connection is never starved by a hold: after ``STARVING_HOLD`` (8 s) without a final the
    source goes at real time (Transcribe ends a stream that gets no audio for 15 s).
    """

    enabled: bool = True
    max_attempts: int = 6
    max_outage: float = 30.0
    base_delay: float = 0.2
    max_delay: float = 5.0
    healthy_after: float = 5.0
    overlap_seconds: float = 0.0
    speaker_sample_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be at least 1, got {self.max_attempts}")
        for name in ("max_outage", "max_delay", "healthy_after"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.base_delay <= self.max_delay:
            raise ConfigurationError(
                f"base_delay must be within 0 and max_delay ({self.max_delay}), got {self.base_delay}"
            )
        if self.overlap_seconds < 0:
            raise ConfigurationError(f"overlap_seconds must not be negative, got {self.overlap_seconds}")
        if self.speaker_sample_seconds and self.speaker_sample_seconds < 1.0:
            raise ConfigurationError(
                f"speaker_sample_seconds must be 0 (off) or at least 1, got {self.speaker_sample_seconds}"
            )

    def retries(self, error: BaseException) -> bool:
        """Whether ``error`` gets a new connection (only typed, retryable errors do)."""
        return self.enabled and isinstance(error, BelugaError) and error.retryable


NO_RECONNECT = ReconnectPolicy(enabled=False, overlap_seconds=0.0, speaker_sample_seconds=0.0)


@dataclass(frozen=True)
class IdlePolicy:
    """What happens while the application sends no audio (the service ends a stream after 15 s).

    ``"keepalive"`` (default): after ``after`` seconds without audio, send ``flush_seconds`` of
    silence at real-time pace (the service needs trailing silence to finalise the last words), then
    one chunk of silence every ``interval`` seconds. Silence is billed; it is counted as keep-alive
    seconds and kept off the result timeline.

    ``"lazy"``: after ``close_after`` seconds without audio, end the connection cleanly (every
    final delivered) and open a new one when audio resumes: nothing billed while idle, but each
    reopening costs a handshake and starts a new request with its own 15-second minimum charge.
    """

    mode: IdleMode = "keepalive"
    after: float = 1.0
    flush_seconds: float = 1.5
    interval: float = 5.0
    close_after: float = 10.0

    def __post_init__(self) -> None:
        if self.mode not in ("keepalive", "lazy"):
            raise ConfigurationError(f"idle mode must be 'keepalive' or 'lazy', got {self.mode!r}")
        for name in ("after", "interval", "close_after"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"idle {name} must be positive, got {getattr(self, name)}")
        if self.flush_seconds < 0:
            raise ConfigurationError(f"idle flush_seconds must not be negative, got {self.flush_seconds}")


@dataclass
class StreamStats:
    """Counters of one ``stream()`` call, live while it runs (``provider.last_stream_stats``)."""

    timeline: TimelineStats = field(default_factory=TimelineStats, repr=False)
    reconnects: int = 0
    downtime_seconds: float = 0.0
    """Time without a usable connection, summed over reconnections."""
    keepalive_seconds: float = 0.0
    """Silence sent only to keep the connection open (billed by the service)."""
    dead_connections: int = 0
    """Connections replaced because a WebSocket ping went unanswered (liveness, not silence)."""
    stalled_drains: int = 0
    """Connections that neither answered nor closed within ``drain_timeout`` after the end of audio."""
    sent_seconds: float = 0.0
    """Audio seconds sent in AudioEvents on every connection: the application's audio, replays and
    keep-alive silence (what the service bills; ``audio_seconds`` once on a fault-free stream)."""
    held_seconds: float = 0.0
    """Wall seconds the application's audio source was held because the replay buffer was full of
    audio a replay could still need (nothing lost; live audio waits upstream meanwhile)."""
    idle_closes: int = 0
    errors: list[str] = field(default_factory=list)
    """Codes of the errors met, retried or not, in order."""

    @property
    def audio_seconds(self) -> float:
        """Application audio accepted (what the service bills, before replays and keep-alive)."""
        return self.timeline.audio_seconds

    @property
    def connections(self) -> int:
        return self.timeline.connections

    @property
    def replayed_seconds(self) -> float:
        """Audio sent again on new connections (billed again)."""
        return self.timeline.replayed_seconds

    @property
    def lost_seconds(self) -> float:
        """Audio that could not be replayed because an outage outlasted the replay buffer."""
        return self.timeline.lost_seconds

    @property
    def duplicate_finals_dropped(self) -> int:
        return self.timeline.duplicate_finals_dropped

    @property
    def retracted_partials(self) -> int:
        return self.timeline.retracted_partials

    def __repr__(self) -> str:
        return (
            f"StreamStats(audio_seconds={self.audio_seconds:.2f}, connections={self.connections}, "
            f"reconnects={self.reconnects}, downtime_seconds={self.downtime_seconds:.2f}, "
            f"replayed_seconds={self.replayed_seconds:.2f}, keepalive_seconds={self.keepalive_seconds:.2f}, "
            f"sent_seconds={self.sent_seconds:.2f}, dead_connections={self.dead_connections}, "
            f"stalled_drains={self.stalled_drains}, idle_closes={self.idle_closes}, "
            f"held_seconds={self.held_seconds:.2f}, "
            f"lost_seconds={self.lost_seconds:.2f}, errors={self.errors})"
        )
