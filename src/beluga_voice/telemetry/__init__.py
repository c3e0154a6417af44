"""Operations: OpenTelemetry metrics and spans with one set of names, Prometheus, logs, redaction.

Only the OpenTelemetry API is a dependency: everything is a no-op until the application installs an
SDK (or ``beluga serve`` attaches its Prometheus bridge).
"""

from beluga_voice.telemetry.logs import JsonFormatter, RedactingFilter, configure_logging
from beluga_voice.telemetry.metrics import (
    ALL_METRICS,
    Kind,
    MetricSink,
    MetricSpec,
    Telemetry,
    default_telemetry,
)
from beluga_voice.telemetry.redact import redact
from beluga_voice.telemetry.stream import SessionTelemetry, StreamTelemetry, error_type

__all__ = [
    "ALL_METRICS",
    "JsonFormatter",
    "Kind",
    "MetricSink",
    "MetricSpec",
    "RedactingFilter",
    "SessionTelemetry",
    "StreamTelemetry",
    "Telemetry",
    "configure_logging",
    "default_telemetry",
    "error_type",
    "redact",
]
