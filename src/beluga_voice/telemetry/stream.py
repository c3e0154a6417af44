"""The small object a stream holds to report what it does: one span and the shared metrics.

Providers create one :class:`StreamTelemetry` per ``stream()`` call, the server one per served
stream, the session one :class:`SessionTelemetry` per session. The per-chunk call
(:meth:`StreamTelemetry.audio_sent`) only adds floats and appends a timestamp; metrics are pushed in
batches of about a second of audio, and at every event that matters.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from types import MappingProxyType, TracebackType
from typing import Final, Literal

from opentelemetry import trace

from beluga_voice.errors import BelugaError
from beluga_voice.stt.model import TranscriptResult
from beluga_voice.telemetry.metrics import (
    ACTIVE_STREAMS,
    AUDIO_SECONDS,
    BILLED_SECONDS,
    ERRORS,
    FINAL_LATENCY,
    FIRST_PARTIAL_LATENCY,
    INTERRUPTIONS,
    KEEPALIVE_SECONDS,
    RECONNECT_DOWNTIME,
    RECONNECTS,
    REPLAYED_SECONDS,
    REPLY_LATENCY,
    STREAMS,
    TURNS,
    MetricSpec,
    Telemetry,
    default_telemetry,
)
from beluga_voice.telemetry.redact import redact
from beluga_voice.usage import BillingRule, SessionUsage, StreamUsage, billing_rule_for, current_session_usage

Component = Literal["client", "server", "session"]
Outcome = Literal["ok", "error", "cancelled"]
Clock = Callable[[], float]

SPAN_NAME: Final = "beluga.stt.stream"
FLUSH_SECONDS: Final = 1.0
"""Audio seconds accumulated before counters are pushed: one push per ~10 chunks of 100 ms."""
MARKS_KEPT: Final = 3000
"""Send-time marks kept for latency lookups: 5 minutes of 100 ms chunks, 1 minute of 20 ms ones."""
MAX_OPEN_SEGMENTS: Final = 256
"""Segments seen as partials and not yet final; a bound for providers that drop segments."""

_SPAN_KIND: Final = {
    "client": trace.SpanKind.CLIENT,
    "server": trace.SpanKind.SERVER,
    "session": trace.SpanKind.INTERNAL,
}


def error_type(exc: BaseException) -> str:
    """The ``error.type`` attribute: the stable :class:`BelugaError` code, else the class name."""
    return exc.code if isinstance(exc, BelugaError) else type(exc).__name__


def _base_attributes(
    component: str, provider: str, region: str | None, language: str | None
) -> Mapping[str, str]:
    return MappingProxyType(
        {"component": component, "provider": provider, "region": region or "", "language": language or ""}
    )


class StreamTelemetry:
    """Span, metrics and usage of one stream.

    Use it as a context manager (the outcome follows from how the block ends) or call :meth:`close`.
    Times in results are taken on the timeline that :meth:`audio_sent` advances.
    """

    def __init__(
        self,
        provider: str,
        region: str | None = None,
        language: str | None = None,
        *,
        component: Component = "client",
        billing: BillingRule | Literal["auto"] | None = "auto",
        telemetry: Telemetry | None = None,
        clock: Clock = time.monotonic,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        hub = telemetry or default_telemetry()
        self.provider = provider
        self.region = region or ""
        self.language = language or ""
        self.component = component
        self._billing = billing_rule_for(provider) if billing == "auto" else billing
        self._sinks = hub.sinks
        self._attrs = _base_attributes(component, provider, region, language)
        self._clock = clock
        self._flush_at = flush_seconds
        self.started = clock()

        self._audio = 0.0  # position on the media timeline
        self._keepalive = 0.0
        self._replayed = 0.0
        self._request = 0.0  # seconds sent on the current connection
        self._requests: list[float] = []
        self._pending_audio = 0.0
        self._pending_keepalive = 0.0
        self._pending_replayed = 0.0
        self._marks: deque[tuple[float, float]] = deque(maxlen=MARKS_KEPT)
        self._open_segments: set[str] = set()
        self._last_error: BaseException | None = None
        self.reconnects = 0
        self.errors = 0
        self.outcome: Outcome | None = None

        self.span = hub.tracer.start_span(
            SPAN_NAME,
            kind=_SPAN_KIND[component],
            attributes={
                "provider": provider,
                "region": self.region,
                "language": self.language,
                "component": component,
            },
        )
        self._emit(ACTIVE_STREAMS, 1)
        if component != "server" and (session := current_session_usage()) is not None:
            session.add(self)

    # -- the hot path -------------------------------------------------------------------------------

    def audio_sent(self, seconds: float) -> None:
        """``seconds`` of application audio went out (call per chunk; it is cheap)."""
        self._audio += seconds
        self._request += seconds
        self._pending_audio += seconds
        self._marks.append((self._audio, self._clock()))
        if self._pending_audio >= self._flush_at:
            self._flush()

    def keepalive_sent(self, seconds: float) -> None:
        """``seconds`` of silence went out only to keep the connection open (billed, not audio)."""
        self._keepalive += seconds
        self._request += seconds
        self._pending_keepalive += seconds
        if self._pending_keepalive >= self._flush_at:
            self._flush()

    def audio_replayed(self, seconds: float) -> None:
        """``seconds`` of already-sent audio went out again on a new connection (billed again)."""
        self._replayed += seconds
        self._request += seconds
        self._pending_replayed += seconds
        if self._pending_replayed >= self._flush_at:
            self._flush()

    # -- results ------------------------------------------------------------------------------------

    def result(self, result: TranscriptResult) -> None:
        """Measure latencies from a result as it arrives; call it for every partial and final.

        The first partial of each segment measures first-partial latency from the moment the
        audio at ``result.start`` was sent; a final with words measures end-of-speech-to-final
        latency from the moment the audio at ``result.end`` was sent.
        """
        now = self._clock()
        if result.is_partial:
            if result.result_id not in self._open_segments:
                if len(self._open_segments) >= MAX_OPEN_SEGMENTS:  # partials whose final never came
                    self._open_segments.clear()
                self._open_segments.add(result.result_id)
                sent = self._sent_at(result.start)
                if sent is not None:
                    self.first_partial(now - sent)
            return
        self._open_segments.discard(result.result_id)
        if result.text:
            sent = self._sent_at(result.end)
            if sent is not None:
                self.final(now - sent)

    def first_partial(self, latency: float) -> None:
        """Record a first-partial latency measured by the caller, in seconds."""
        self._emit(FIRST_PARTIAL_LATENCY, max(0.0, latency))

    def final(self, latency: float) -> None:
        """Record an end-of-speech-to-final latency measured by the caller, in seconds."""
        self._emit(FINAL_LATENCY, max(0.0, latency))

    # -- connection events --------------------------------------------------------------------------

    def reconnect(self, downtime: float = 0.0) -> None:
        """A new connection replaced a failed one (a new request for billing)."""
        self._end_request()
        self.reconnects += 1
        self._open_segments.clear()
        self._emit(RECONNECTS, 1)
        if downtime > 0:
            self._emit(RECONNECT_DOWNTIME, downtime)
        self.span.add_event("reconnect", {"attempt": self.reconnects, "downtime": downtime})

    def error(self, exc: BaseException) -> None:
        """Count an error (retryable or not); its message goes to the span, with secrets masked."""
        if exc is self._last_error:
            return
        self._last_error = exc
        self.errors += 1
        kind = error_type(exc)
        self._emit(ERRORS, 1, {"error.type": kind})
        attributes: dict[str, str | bool] = {
            "exception.type": type(exc).__name__,
            "exception.message": redact(str(exc)),
            "error.type": kind,
        }
        if isinstance(exc, BelugaError):
            attributes["retryable"] = exc.retryable
        self.span.add_event("exception", attributes)

    def close(self, outcome: Outcome = "ok") -> None:
        """End the stream: flush, settle billing, end the span. Later calls do nothing."""
        if self.outcome is not None:
            return
        self.outcome = outcome
        self._end_request()
        self._emit(ACTIVE_STREAMS, -1)
        self._emit(STREAMS, 1, {"outcome": outcome})
        self.span.set_attribute("outcome", outcome)
        usage = self.usage
        self.span.set_attribute("audio_seconds", round(usage.audio_seconds, 3))
        self.span.set_attribute("billed_seconds", round(usage.billed_seconds, 3))
        if outcome == "error":
            detail = redact(str(self._last_error)) if self._last_error is not None else None
            self.span.set_status(trace.Status(trace.StatusCode.ERROR, detail))
        self.span.end()

    def __enter__(self) -> StreamTelemetry:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.close("ok")
        elif isinstance(exc, asyncio.CancelledError | GeneratorExit | KeyboardInterrupt):
            self.close("cancelled")
        else:
            self.error(exc)
            self.close("error")

    # -- reading ------------------------------------------------------------------------------------

    @property
    def audio_seconds(self) -> float:
        return self._audio

    @property
    def usage(self) -> StreamUsage:
        """Usage so far; the open connection counts as a request once it carried audio."""
        requests = [*self._requests, self._request] if self._request > 0 else list(self._requests)
        return StreamUsage(
            provider=self.provider,
            region=self.region,
            language=self.language,
            audio_seconds=self._audio,
            keepalive_seconds=self._keepalive,
            replayed_seconds=self._replayed,
            requests=tuple(requests),
            billing=self._billing,
        )

    def __repr__(self) -> str:
        return (
            f"StreamTelemetry(provider={self.provider!r}, region={self.region!r}, language={self.language!r}, "
            f"component={self.component!r}, audio_seconds={self._audio:.2f}, outcome={self.outcome!r})"
        )

    # -- internals ----------------------------------------------------------------------------------

    def _emit(self, spec: MetricSpec, value: float, extra: Mapping[str, str] | None = None) -> None:
        attributes = self._attrs if extra is None else {**self._attrs, **extra}
        for sink in self._sinks:
            sink.record(spec, value, attributes)

    def _flush(self) -> None:
        billed = 0.0
        if self._pending_audio:
            self._emit(AUDIO_SECONDS, self._pending_audio)
            billed += self._pending_audio
            self._pending_audio = 0.0
        if self._pending_keepalive:
            self._emit(KEEPALIVE_SECONDS, self._pending_keepalive)
            billed += self._pending_keepalive
            self._pending_keepalive = 0.0
        if self._pending_replayed:
            self._emit(REPLAYED_SECONDS, self._pending_replayed)
            billed += self._pending_replayed
            self._pending_replayed = 0.0
        if billed and self._billing is not None:
            self._emit(BILLED_SECONDS, billed)

    def _end_request(self) -> None:
        """Push what is pending, then the request's rounding and minimum as extra billed seconds."""
        self._flush()
        if self._request <= 0:
            return
        if self._billing is not None:
            extra = self._billing.billable(self._request) - self._request
            if extra > 0:
                self._emit(BILLED_SECONDS, extra)
        self._requests.append(self._request)
        self._request = 0.0

    def _sent_at(self, media_time: float) -> float | None:
        """When the audio reaching ``media_time`` was sent; ``None`` if that is older than the marks."""
        marks = self._marks
        if not marks:
            return None
        found: float | None = None
        for position, sent in reversed(marks):
            if position + 1e-6 < media_time:
                break
            found = sent
        else:
            if len(marks) == marks.maxlen and media_time < marks[0][0]:
                return None  # the audio there was sent before the oldest mark we kept
        return marks[-1][1] if found is None else found


class SessionTelemetry:
    """Turn-level metrics of one voice session, and the usage of every stream it opened.

    Enter :meth:`collecting` around the session's streaming so that the streams' usage joins
    :attr:`usage`.
    """

    def __init__(
        self,
        provider: str,
        region: str | None = None,
        language: str | None = None,
        *,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._hub = telemetry or default_telemetry()
        self._attrs = _base_attributes("session", provider, region, language)
        self.usage = SessionUsage()
        self.turns = 0
        self.interruptions = 0

    def collecting(self) -> AbstractContextManager[SessionUsage]:
        """Context manager: streams created inside count towards this session's usage."""
        return self.usage.collecting()

    def turn(self, *, final_latency: float | None = None, reply_latency: float | None = None) -> None:
        """A user turn completed: end of speech to its final transcript, and to the agent's reply."""
        self.turns += 1
        self._hub.emit(TURNS, 1, self._attrs)
        if final_latency is not None:
            self._hub.emit(FINAL_LATENCY, max(0.0, final_latency), self._attrs)
        if reply_latency is not None:
            self._hub.emit(REPLY_LATENCY, max(0.0, reply_latency), self._attrs)

    def interruption(self) -> None:
        """The user spoke over the agent (barge-in)."""
        self.interruptions += 1
        self._hub.emit(INTERRUPTIONS, 1, self._attrs)
