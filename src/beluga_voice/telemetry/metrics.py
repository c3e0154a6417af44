"""The one table of metric names, shared by the client, the session and the server.

Every measurement goes through :class:`Telemetry`, which fans it out to OpenTelemetry (a no-op until
the application installs an SDK) and to any extra sink, such as the Prometheus bridge of
``beluga serve``. Both see the same names, units and attributes, so a dashboard built on one works
on the other.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Protocol

from opentelemetry import metrics, trace

INSTRUMENTATION_NAME = "beluga_voice"


class Kind(Enum):
    COUNTER = "counter"
    UP_DOWN = "up_down_counter"
    HISTOGRAM = "histogram"


BASE_ATTRIBUTES = ("component", "provider", "region", "language")
"""On every metric: which part measured (client, server, session) and for which stream setup."""

# Seconds, spread from a fast partial (50 ms) to a very slow final (20 s).
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)
DOWNTIME_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its OpenTelemetry name, kind, UCUM unit and the attribute keys it carries."""

    name: str
    kind: Kind
    unit: str
    description: str
    attributes: tuple[str, ...] = BASE_ATTRIBUTES
    buckets: tuple[float, ...] = ()

    @property
    def prometheus_name(self) -> str:
        """The name Prometheus shows, following the OpenTelemetry-to-Prometheus convention.

        Dots become underscores, a unit of seconds adds ``_seconds`` unless already there, and
        counters end in ``_total`` (added by prometheus_client itself, so not part of this name).
        """
        base = self.name.replace(".", "_")
        if self.unit == "s" and not base.endswith("_seconds"):
            base += "_seconds"
        return base


def label_name(attribute: str) -> str:
    """Prometheus label for an attribute key (``error.type`` -> ``error_type``)."""
    return attribute.replace(".", "_")


STREAMS = MetricSpec(
    "beluga.stt.streams",
    Kind.COUNTER,
    "{stream}",
    "Streams ended, by outcome (ok, error, cancelled).",
    (*BASE_ATTRIBUTES, "outcome"),
)
ACTIVE_STREAMS = MetricSpec("beluga.stt.active_streams", Kind.UP_DOWN, "{stream}", "Streams open now.")
AUDIO_SECONDS = MetricSpec(
    "beluga.stt.audio_seconds", Kind.COUNTER, "s", "Seconds of application audio sent (replays excluded)."
)
KEEPALIVE_SECONDS = MetricSpec(
    "beluga.stt.keepalive_seconds", Kind.COUNTER, "s", "Seconds of silence sent to keep an idle stream open."
)
REPLAYED_SECONDS = MetricSpec(
    "beluga.stt.replayed_seconds", Kind.COUNTER, "s", "Seconds of audio sent again after a reconnect."
)
BILLED_SECONDS = MetricSpec(
    "beluga.stt.billed_seconds",
    Kind.COUNTER,
    "s",
    "Estimated billable seconds: audio, replays and keep-alive silence, with the provider's per-request "
    "rounding and minimum (zero for providers that do not bill).",
)
FIRST_PARTIAL_LATENCY = MetricSpec(
    "beluga.stt.first_partial_latency",
    Kind.HISTOGRAM,
    "s",
    "From sending the audio where an utterance starts to receiving its first partial result.",
    buckets=LATENCY_BUCKETS,
)
FINAL_LATENCY = MetricSpec(
    "beluga.stt.final_latency",
    Kind.HISTOGRAM,
    "s",
    "From sending the audio where speech ends to receiving the final result.",
    buckets=LATENCY_BUCKETS,
)
RECONNECTS = MetricSpec(
    "beluga.stt.reconnects", Kind.COUNTER, "{reconnect}", "New connections after a failure."
)
RECONNECT_DOWNTIME = MetricSpec(
    "beluga.stt.reconnect_downtime",
    Kind.HISTOGRAM,
    "s",
    "Time without a working connection, per reconnect.",
    buckets=DOWNTIME_BUCKETS,
)
ERRORS = MetricSpec(
    "beluga.stt.errors",
    Kind.COUNTER,
    "{error}",
    "Errors by type (error.type is BelugaError.code, or the exception class name).",
    (*BASE_ATTRIBUTES, "error.type"),
)
TURNS = MetricSpec("beluga.session.turns", Kind.COUNTER, "{turn}", "User turns completed in voice sessions.")
INTERRUPTIONS = MetricSpec(
    "beluga.session.interruptions", Kind.COUNTER, "{interruption}", "User speech that interrupted the agent."
)
REPLY_LATENCY = MetricSpec(
    "beluga.session.reply_latency",
    Kind.HISTOGRAM,
    "s",
    "From the end of the user's speech to the start of the agent's reply.",
    buckets=LATENCY_BUCKETS,
)

ALL_METRICS: tuple[MetricSpec, ...] = (
    STREAMS,
    ACTIVE_STREAMS,
    AUDIO_SECONDS,
    KEEPALIVE_SECONDS,
    REPLAYED_SECONDS,
    BILLED_SECONDS,
    FIRST_PARTIAL_LATENCY,
    FINAL_LATENCY,
    RECONNECTS,
    RECONNECT_DOWNTIME,
    ERRORS,
    TURNS,
    INTERRUPTIONS,
    REPLY_LATENCY,
)


class MetricSink(Protocol):
    """Anything that takes measurements: the OpenTelemetry instruments, the Prometheus bridge."""

    def record(self, spec: MetricSpec, value: float, attributes: Mapping[str, str]) -> None:
        """Add to a counter, move an up-down counter, or observe a histogram, by ``spec.kind``."""


class OpenTelemetrySink:
    """Forwards measurements to OpenTelemetry instruments (no-op without an installed SDK)."""

    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        from beluga_voice import __version__

        meter = metrics.get_meter(INSTRUMENTATION_NAME, __version__, meter_provider=meter_provider)
        self._record: dict[str, _Recorder] = {}
        for spec in ALL_METRICS:
            if spec.kind is Kind.COUNTER:
                self._record[spec.name] = meter.create_counter(spec.name, spec.unit, spec.description).add
            elif spec.kind is Kind.UP_DOWN:
                self._record[spec.name] = meter.create_up_down_counter(
                    spec.name, spec.unit, spec.description
                ).add
            else:
                self._record[spec.name] = meter.create_histogram(
                    spec.name, spec.unit, spec.description, explicit_bucket_boundaries_advisory=spec.buckets
                ).record

    def record(self, spec: MetricSpec, value: float, attributes: Mapping[str, str]) -> None:
        self._record[spec.name](value, attributes)


class _Recorder(Protocol):
    def __call__(self, amount: float, attributes: Mapping[str, str], /) -> None: ...


class Telemetry:
    """Where measurements and spans go: OpenTelemetry plus any registered extra sinks.

    The default instance (:func:`default_telemetry`) uses OpenTelemetry's global providers, so an
    application that installs an SDK sees everything. Tests and embedders pass their own providers.
    """

    def __init__(
        self,
        meter_provider: metrics.MeterProvider | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        from beluga_voice import __version__

        self.tracer = trace.get_tracer(INSTRUMENTATION_NAME, __version__, tracer_provider=tracer_provider)
        self._otel = OpenTelemetrySink(meter_provider)
        self._extra: tuple[MetricSink, ...] = ()
        self._lock = threading.Lock()

    @property
    def sinks(self) -> tuple[MetricSink, ...]:
        """OpenTelemetry first, then the extra sinks; a stream keeps the tuple it started with."""
        return (self._otel, *self._extra)

    def add_sink(self, sink: MetricSink) -> None:
        """Send every later measurement to ``sink`` too (streams already open keep their sinks)."""
        with self._lock:
            if sink not in self._extra:
                self._extra = (*self._extra, sink)

    def remove_sink(self, sink: MetricSink) -> None:
        with self._lock:
            self._extra = tuple(s for s in self._extra if s is not sink)

    def emit(self, spec: MetricSpec, value: float, attributes: Mapping[str, str]) -> None:
        """One measurement to every sink (for code without a stream, e.g. a session)."""
        for sink in self.sinks:
            sink.record(spec, value, attributes)


@cache
def default_telemetry() -> Telemetry:
    """The process-wide :class:`Telemetry` on OpenTelemetry's global providers."""
    return Telemetry()
