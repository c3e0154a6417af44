"""Mirror the shared metrics into a prometheus_client registry, for ``beluga serve``'s /metrics.

The OpenTelemetry SDK is not a runtime dependency, so the server cannot rely on an OTel Prometheus
exporter; this bridge is a sink of :class:`~beluga_voice.telemetry.metrics.Telemetry` that keeps the
same names (in Prometheus style: ``beluga.stt.audio_seconds`` -> ``beluga_stt_audio_seconds_total``).
Needs the ``server`` extra (prometheus-client).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from beluga_voice.errors import ConfigurationError
from beluga_voice.telemetry.metrics import ACTIVE_STREAMS, ALL_METRICS, Kind, MetricSpec, label_name

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


def _require_prometheus() -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the server extra is installed in dev
        raise ConfigurationError(
            "Prometheus metrics need prometheus-client: pip install 'beluga-voice[server]'"
        ) from exc


def new_registry(*, process_metrics: bool = True) -> CollectorRegistry:
    """A registry of its own (not prometheus_client's global one), with process CPU/memory/GC."""
    _require_prometheus()
    from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

    registry = CollectorRegistry()
    if process_metrics:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


class PrometheusBridge:
    """A metric sink that writes every shared metric into ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        _require_prometheus()
        from prometheus_client import Counter, Gauge, Histogram

        self.registry = registry
        self._counters: dict[str, Counter | Gauge] = {}
        self._histograms: dict[str, Histogram] = {}
        self._active: dict[str, float] = {}
        self._lock = threading.Lock()
        for spec in ALL_METRICS:
            labels = [label_name(a) for a in spec.attributes]
            name = spec.prometheus_name
            if spec.kind is Kind.COUNTER:
                self._counters[spec.name] = Counter(name, spec.description, labels, registry=registry)
            elif spec.kind is Kind.UP_DOWN:
                self._counters[spec.name] = Gauge(name, spec.description, labels, registry=registry)
            else:
                self._histograms[spec.name] = Histogram(
                    name, spec.description, labels, registry=registry, buckets=spec.buckets
                )

    def record(self, spec: MetricSpec, value: float, attributes: Mapping[str, str]) -> None:
        labels = [attributes.get(a, "") for a in spec.attributes]
        if spec.kind is Kind.HISTOGRAM:
            self._histograms[spec.name].labels(*labels).observe(value)
        else:
            self._counters[spec.name].labels(*labels).inc(value)
        if spec is ACTIVE_STREAMS:
            component = attributes.get("component", "")
            with self._lock:
                self._active[component] = self._active.get(component, 0.0) + value

    def active_streams(self, component: str | None = None) -> int:
        """Streams open now, of one component (``"server"``, ``"client"``...) or all of them."""
        with self._lock:
            if component is not None:
                return int(self._active.get(component, 0.0))
            return int(sum(self._active.values()))
