"""Audio seconds and an estimated cost, per stream and per session.

Everything here is an ESTIMATE made on the client side from what was sent; the provider's bill is the
truth. Amazon Transcribe prices streaming by the second of audio, with a minimum charge per request
(one WebSocket connection is one request), so reconnects and keep-alive silence cost money: this module
makes that visible.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from beluga_voice.errors import ConfigurationError

DEFAULT_RATE_PER_MINUTE = 0.024
"""USD per minute. An assumption, not a quote: the standard streaming rate of the first usage tier as
published for US regions when this was written. Rates differ by region, tier, and features (PII
redaction, custom language models); pass your own rate."""

DEFAULT_CURRENCY = "USD"


@dataclass(frozen=True)
class BillingRule:
    """How a provider turns the seconds sent on one request into billed seconds."""

    increment_seconds: float = 1.0
    minimum_seconds: float = 15.0

    def billable(self, sent_seconds: float) -> float:
        """Seconds billed for one request that carried ``sent_seconds`` of audio.

        A request that carried no audio is counted as free (not confirmed by AWS; it is the
        optimistic reading, and such requests are rare).
        """
        if sent_seconds <= 0:
            return 0.0
        # round() first so that float noise (14.999999...) does not add a whole increment
        increments = math.ceil(round(sent_seconds / self.increment_seconds, 6))
        return max(self.minimum_seconds, increments * self.increment_seconds)


TRANSCRIBE_STREAMING = BillingRule(increment_seconds=1.0, minimum_seconds=15.0)
"""Amazon Transcribe: billed in one-second increments with a 15-second minimum per request; two-channel
audio is billed once for its duration, not per channel."""

_BILLING_BY_PROVIDER: dict[str, BillingRule] = {"aws": TRANSCRIBE_STREAMING}


def billing_rule_for(provider: str) -> BillingRule | None:
    """The billing rule of a registered provider name; ``None`` for providers that cost nothing."""
    return _BILLING_BY_PROVIDER.get(provider)


def cost(billed_seconds: float, rate_per_minute: float = DEFAULT_RATE_PER_MINUTE) -> float:
    """Estimated cost of ``billed_seconds`` at ``rate_per_minute``."""
    if rate_per_minute < 0:
        raise ConfigurationError(
            f"rate_per_minute must be >= 0, got {rate_per_minute!r}; give the price per minute of audio"
        )
    return billed_seconds / 60.0 * rate_per_minute


@dataclass(frozen=True)
class StreamUsage:
    """What one stream sent, and what that is estimated to cost.

    ``requests`` holds the seconds sent on each connection, in order: a reconnect starts a new
    request, which the provider bills (with its minimum) on its own.
    """

    provider: str
    region: str = ""
    language: str = ""
    audio_seconds: float = 0.0
    keepalive_seconds: float = 0.0
    replayed_seconds: float = 0.0
    requests: tuple[float, ...] = ()
    billing: BillingRule | None = None

    @property
    def sent_seconds(self) -> float:
        """Everything put on the wire: audio, replays and keep-alive silence."""
        return self.audio_seconds + self.keepalive_seconds + self.replayed_seconds

    @property
    def billed_seconds(self) -> float:
        if self.billing is None:
            return 0.0
        return sum(self.billing.billable(seconds) for seconds in self.requests)

    def cost(self, rate_per_minute: float = DEFAULT_RATE_PER_MINUTE) -> float:
        return cost(self.billed_seconds, rate_per_minute)

    def to_dict(self, rate_per_minute: float = DEFAULT_RATE_PER_MINUTE) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "region": self.region,
            "language": self.language,
            "audio_seconds": round(self.audio_seconds, 3),
            "keepalive_seconds": round(self.keepalive_seconds, 3),
            "replayed_seconds": round(self.replayed_seconds, 3),
            "requests": len(self.requests),
            "billed_seconds": round(self.billed_seconds, 3),
            "rate_per_minute": rate_per_minute,
            "currency": DEFAULT_CURRENCY,
            "estimated_cost": round(self.cost(rate_per_minute), 6),
        }


class UsageSource(Protocol):
    """Something that can report its usage so far (a stream's telemetry)."""

    @property
    def usage(self) -> StreamUsage: ...


@dataclass
class SessionUsage:
    """The usage of every stream opened on behalf of one session, live.

    Streams join by themselves: any stream telemetry created inside :meth:`collecting` (in the same
    task, or a task started from it) is added, including reconnects and fallback providers.
    """

    sources: list[UsageSource] = field(default_factory=list)

    def add(self, source: UsageSource) -> None:
        self.sources.append(source)

    @property
    def streams(self) -> list[StreamUsage]:
        return [source.usage for source in self.sources]

    @property
    def audio_seconds(self) -> float:
        return sum(s.audio_seconds for s in self.streams)

    @property
    def billed_seconds(self) -> float:
        return sum(s.billed_seconds for s in self.streams)

    def cost(self, rate_per_minute: float = DEFAULT_RATE_PER_MINUTE) -> float:
        return cost(self.billed_seconds, rate_per_minute)

    def to_dict(self, rate_per_minute: float = DEFAULT_RATE_PER_MINUTE) -> dict[str, Any]:
        streams = self.streams
        billed = sum(s.billed_seconds for s in streams)
        return {
            "audio_seconds": round(sum(s.audio_seconds for s in streams), 3),
            "billed_seconds": round(billed, 3),
            "rate_per_minute": rate_per_minute,
            "currency": DEFAULT_CURRENCY,
            "estimated_cost": round(cost(billed, rate_per_minute), 6),
            "streams": [s.to_dict(rate_per_minute) for s in streams],
        }

    @contextmanager
    def collecting(self) -> Iterator[SessionUsage]:
        """Make streams opened inside this block count towards this session."""
        token = _current_session.set(self)
        try:
            yield self
        finally:
            _current_session.reset(token)


_current_session: ContextVar[SessionUsage | None] = ContextVar("beluga_session_usage", default=None)


def current_session_usage() -> SessionUsage | None:
    """The session whose :meth:`SessionUsage.collecting` block is active here, if any."""
    return _current_session.get()


def format_usage(usage: StreamUsage | SessionUsage, rate_per_minute: float = DEFAULT_RATE_PER_MINUTE) -> str:
    """One line for people: audio, billed seconds and the estimated cost, marked as an estimate."""
    streams = usage.streams if isinstance(usage, SessionUsage) else [usage]
    audio = sum(s.audio_seconds for s in streams)
    billed = sum(s.billed_seconds for s in streams)
    requests = sum(len(s.requests) for s in streams)
    extra = sum(s.keepalive_seconds + s.replayed_seconds for s in streams)
    parts = [f"audio {audio:.1f} s"]
    if extra:
        parts.append(f"keep-alive and replay {extra:.1f} s")
    parts.append(f"billed {billed:.0f} s over {requests} request{'s' if requests != 1 else ''}")
    price = cost(billed, rate_per_minute)
    parts.append(
        f"estimated cost {price:.4f} {DEFAULT_CURRENCY} at {rate_per_minute:g} {DEFAULT_CURRENCY}/min"
    )
    return ", ".join(parts) + " (an estimate; your provider's bill is authoritative)"
