"""The server's own settings (not a stream's parameters: those are a TranscribeConfig)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from beluga_voice.errors import ConfigurationError
from beluga_voice.server.auth import CredentialStore
from beluga_voice.server.engine import EngineFactory
from beluga_voice.server.faults import FaultPlan
from beluga_voice.telemetry.metrics import Telemetry

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8443
Rejection = Literal["frame", "http"]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ServerConfig:
    """How ``beluga serve`` listens, authenticates, limits streams, and which engine it runs.

    ``rejection`` decides how a refused stream (bad signature, expired URL, bad parameters, too many
    streams) is answered: ``"frame"`` (default) upgrades and sends the exception frame, which every
    client can read; ``"http"`` refuses the upgrade with the exception's HTTP status, JSON body and
    ``x-amzn-ErrorType`` header. ``port=0`` picks a free port. ``clock`` is the server's idea of now
    for signature windows (tests move it to expire URLs). ``vocabulary_filters`` maps filter names to
    word sets; with none configured, the filter parameters are accepted and not applied.

    ``metrics_port`` (``None``: off) serves ``/healthz`` and Prometheus ``/metrics`` on a port of
    their own at ``metrics_host``. Every stream reports to ``telemetry`` (default: the process-wide
    one, on OpenTelemetry's global providers) with ``component="server"``.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    certfile: Path | None = None
    keyfile: Path | None = None
    auth: bool = True
    credentials: CredentialStore = field(default_factory=CredentialStore)
    region: str | None = None
    rejection: Rejection = "frame"
    idle_timeout: float = 15.0
    max_stream_seconds: float = 4 * 3600.0
    max_streams: int = 25
    max_chunk_seconds: float = 1.0
    max_ahead_seconds: float | None = 60.0
    drain_timeout: float = 30.0
    close_timeout: float = 10.0
    faults: FaultPlan = field(default_factory=FaultPlan)
    vocabulary_filters: Mapping[str, frozenset[str]] = field(default_factory=dict)
    engine: EngineFactory | None = None
    partials: bool = True
    """``False``: only final results are sent, as a quiet service does (partials are optional)."""
    clock: Callable[[], datetime] = utc_now
    metrics_host: str = DEFAULT_HOST
    metrics_port: int | None = None
    telemetry: Telemetry | None = None

    def __post_init__(self) -> None:
        if self.auth and not len(self.credentials):
            raise ConfigurationError(
                "beluga serve verifies SigV4 signatures and has no credentials to check them against: "
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pass --credentials-file FILE, "
                "or run with --no-auth for an open local server."
            )
        if (self.certfile is None) != (self.keyfile is None):
            raise ConfigurationError("TLS needs both --certfile and --keyfile (or neither, for ws://)")
        if self.rejection not in ("frame", "http"):
            raise ConfigurationError(f"rejection must be 'frame' or 'http', got {self.rejection!r}")
        for name in (
            "idle_timeout",
            "max_stream_seconds",
            "max_chunk_seconds",
            "drain_timeout",
            "close_timeout",
        ):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_ahead_seconds is not None and self.max_ahead_seconds <= 0:
            raise ConfigurationError(
                f"max_ahead_seconds must be positive or None, got {self.max_ahead_seconds}"
            )
        if self.max_streams < 1:
            raise ConfigurationError(f"max_streams must be at least 1, got {self.max_streams}")
        if not 0 <= self.port <= 65535:
            raise ConfigurationError(f"port must be within 0-65535, got {self.port}")
        if self.metrics_port is not None:
            if not 0 <= self.metrics_port <= 65535:
                raise ConfigurationError(f"metrics port must be within 0-65535, got {self.metrics_port}")
            if self.metrics_port == self.port != 0:
                raise ConfigurationError(
                    f"the metrics port {self.metrics_port} is the streaming port: pick another "
                    "--metrics-port (0 picks a free one)"
                )

    @property
    def tls(self) -> bool:
        return self.certfile is not None
