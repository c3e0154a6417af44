"""``/healthz`` and Prometheus ``/metrics`` on a port of their own.

Kept apart from the WebSocket port so that a load balancer or scraper never needs a signed URL, and
so that health stays answerable while the streaming port is saturated. A deliberately tiny HTTP/1.1
server on asyncio streams: GET or HEAD, one request per connection, bounded request size and time.

    async with ObservabilityServer("127.0.0.1", 9464) as obs:
        ...  # obs.url + "/metrics"
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any

from beluga_voice.errors import ConfigurationError
from beluga_voice.telemetry.metrics import Telemetry, default_telemetry
from beluga_voice.telemetry.prometheus import PrometheusBridge, new_registry

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger("beluga_voice.server.observability")

DEFAULT_PORT = 9464
"""The port commonly used for Prometheus exporters of OpenTelemetry-instrumented services."""
MAX_REQUEST_HEAD = 8192
REQUEST_TIMEOUT = 5.0

HealthSource = Callable[[], Mapping[str, Any]]
"""Extra /healthz fields from the application, e.g. ``{"status": "draining"}`` during shutdown."""


class ObservabilityServer:
    """Serves ``/healthz`` (JSON) and ``/metrics`` (Prometheus text) until closed.

    Metrics come from a :class:`PrometheusBridge` attached to ``telemetry`` while the server runs,
    so every stream opened in the process after start shows up under the shared metric names.
    ``/healthz`` answers 200 while ``status`` is ``"ok"`` and 503 otherwise (``health`` may set it).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        registry: CollectorRegistry | None = None,
        *,
        telemetry: Telemetry | None = None,
        health: HealthSource | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.registry = registry if registry is not None else new_registry()
        self.bridge = PrometheusBridge(self.registry)
        self._telemetry = telemetry or default_telemetry()
        self._health = health
        self._server: asyncio.Server | None = None
        self._started = time.monotonic()

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        if self._server is None or not self._server.sockets:
            return self._requested_port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def uptime(self) -> float:
        return time.monotonic() - self._started

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._handle, self.host, self._requested_port, limit=MAX_REQUEST_HEAD
            )
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve metrics on {self.host}:{self._requested_port}: {exc.strerror or exc}; "
                "pick another --metrics-port (0 picks a free one)."
            ) from exc
        self._started = time.monotonic()
        self._telemetry.add_sink(self.bridge)
        log.info("health and metrics on %s (/healthz, /metrics)", self.url)

    async def close(self) -> None:
        self._telemetry.remove_sink(self.bridge)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> ObservabilityServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def health(self) -> dict[str, Any]:
        """The /healthz document."""
        from beluga_voice import __version__

        doc: dict[str, Any] = {
            "status": "ok",
            "active_streams": self.bridge.active_streams(),
            "uptime_seconds": round(self.uptime, 3),
            "version": __version__,
        }
        if self._health is not None:
            doc.update(self._health())
        return doc

    # -- HTTP ---------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            except (asyncio.LimitOverrunError, ValueError):
                await self._respond(
                    writer, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, b"request too large\n"
                )
                return
            except (TimeoutError, asyncio.IncompleteReadError):
                return
            method, path, accept = _parse_head(head)
            try:
                status, body, content_type = self._route(method, path, accept)
            except Exception:  # a failing health source must not take the endpoint down silently
                log.exception("%s %s failed", method, path)
                status, body, content_type = (
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    b"internal error\n",
                    "text/plain",
                )
            await self._respond(writer, status, body, content_type, head_only=method == "HEAD")
            log.debug("%s %s -> %d", method, path, status)
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _route(self, method: str | None, path: str, accept: str) -> tuple[HTTPStatus, bytes, str]:
        text = "text/plain; charset=utf-8"
        if method is None:
            return HTTPStatus.BAD_REQUEST, b"malformed request\n", text
        if method not in ("GET", "HEAD"):
            return HTTPStatus.METHOD_NOT_ALLOWED, b"only GET and HEAD\n", text
        if path == "/metrics":
            from prometheus_client.exposition import choose_encoder

            encoder, content_type = choose_encoder(accept)
            return HTTPStatus.OK, encoder(self.registry), content_type
        if path == "/healthz":
            doc = self.health()
            status = HTTPStatus.OK if doc.get("status") == "ok" else HTTPStatus.SERVICE_UNAVAILABLE
            return status, json.dumps(doc).encode() + b"\n", "application/json"
        return HTTPStatus.NOT_FOUND, b"not found: try /healthz or /metrics\n", text

    @staticmethod
    async def _respond(
        writer: asyncio.StreamWriter,
        status: HTTPStatus,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        *,
        head_only: bool = False,
    ) -> None:
        headers = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(headers.encode("latin-1") + (b"" if head_only else body))
        await writer.drain()


def _parse_head(head: bytes) -> tuple[str | None, str, str]:
    """Method, path (query dropped) and Accept header of a request head; method None if malformed."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None, "", ""
    accept = ""
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "accept":
            accept = value.strip()
    return parts[0].upper(), parts[1].split("?", 1)[0], accept
