"""The server: handshake checks, one StreamSession per connection, graceful drain, in-process use.

``serve_in_background(config)`` runs it inside the caller's event loop on an ephemeral port, which is
how every other part of the project tests against it. With ``metrics_port`` set, ``/healthz`` and
``/metrics`` run beside it for as long as it does, and health turns 503 as soon as a drain starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import ssl
import uuid
import weakref
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from beluga_voice.errors import ConfigurationError
from beluga_voice.providers.aws_transcribe.config import DEFAULT_REGION, TranscribeConfig
from beluga_voice.server.auth import AUTH_PARAMS, AuthFailure, mask_key, verify_presigned_url
from beluga_voice.server.engine import EngineFactory, LocalEngineFactory, engine_name
from beluga_voice.server.exceptions import StreamException, bad_request
from beluga_voice.server.handshake import STREAM_PATH, normalize_headers, split_target
from beluga_voice.server.limits import StreamRegistry, too_many_streams
from beluga_voice.server.observability import ObservabilityServer
from beluga_voice.server.settings import ServerConfig
from beluga_voice.server.stream import Admission, StreamSession, new_request_id
from beluga_voice.server.vocabulary import VocabularyFilter
from beluga_voice.telemetry.metrics import default_telemetry

log = logging.getLogger("beluga_voice.server")
# websockets logs every open and close; the server writes its own single line per stream instead.
ws_log = logging.getLogger("beluga_voice.server.websockets")
ws_log.setLevel(logging.WARNING)

# Largest frame websockets accepts before our own checks: over the chunk limit at 48 kHz stereo, so an
# oversized chunk is answered with a BadRequestException rather than a bare close.
FRAME_HEADROOM = 64 * 1024


class TranscribeServer:
    """A Transcribe-compatible streaming server; ``start``/``stop``, or ``async with``."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.engine: EngineFactory = config.engine if config.engine is not None else LocalEngineFactory()
        self.engine_name = engine_name(self.engine)
        self.telemetry = config.telemetry or default_telemetry()
        self.observability: ObservabilityServer | None = None
        self.draining = False
        self.registry = StreamRegistry(config.max_streams)
        # Weak keys: a connection lost between the checks and the handler leaves nothing behind.
        self._admissions: weakref.WeakKeyDictionary[ServerConnection, Admission] = weakref.WeakKeyDictionary()
        self._sessions: set[StreamSession] = set()
        self._arrivals = 0
        self._no_sessions = asyncio.Event()
        self._no_sessions.set()
        self._server: Server | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        # Health first: a port clash fails before the model loads, and /healthz says "starting" meanwhile.
        if self.config.metrics_port is not None:
            self.observability = ObservabilityServer(
                self.config.metrics_host,
                self.config.metrics_port,
                telemetry=self.telemetry,
                health=self.health,
            )
            await self.observability.start()
        try:
            preload = getattr(self.engine, "preload", None)
            if preload is not None:
                await preload()
            max_frame = int(48000 * 2 * 2 * self.config.max_chunk_seconds) * 2 + FRAME_HEADROOM
            try:
                self._server = await self._listen(max_frame)
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror or exc}; "
                    "pick another --port (0 = any free port) or stop what holds it"
                ) from None
        except BaseException:
            await self._close_observability()
            raise
        log.info("beluga serve listening on %s (auth %s)", self.url, "on" if self.config.auth else "OFF")

    async def _listen(self, max_frame: int) -> Server:
        return await serve(
            self._handle,
            self.config.host,
            self.config.port,
            ssl=self._ssl_context(),
            process_request=self._process_request,
            process_response=self._process_response,
            compression=None,
            max_size=max_frame,
            max_queue=8,
            # No pings of our own: a client's pong travels behind the audio it sent before, which the
            # server reads only at decoding pace, so a fast feed would look dead. The client's
            # audio is its proof of life (``idle_timeout``), and the drain has its own deadline.
            ping_interval=None,
            close_timeout=self.config.close_timeout,
            server_header="beluga-voice",
            logger=ws_log,
        )

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.config.tls:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(str(self.config.certfile), str(self.config.keyfile))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load the TLS certificate {self.config.certfile} / key {self.config.keyfile}: {exc}"
            ) from None
        return context

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not started")
        sockname = next(iter(self._server.sockets)).getsockname()
        return int(sockname[1])

    @property
    def url(self) -> str:
        """The stream endpoint, e.g. ``ws://127.0.0.1:8443/stream-transcription-websocket``."""
        scheme = "wss" if self.config.tls else "ws"
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"{scheme}://{host}:{self.port}{STREAM_PATH}"

    @property
    def endpoint(self) -> str:
        """``scheme://host:port`` without the path (what an endpoint override usually takes)."""
        return self.url.removesuffix(STREAM_PATH)

    @property
    def live_streams(self) -> int:
        return len(self._sessions)

    @property
    def metrics_url(self) -> str | None:
        """``http://host:port`` of ``/healthz`` and ``/metrics``, when they are served."""
        return self.observability.url if self.observability is not None else None

    def health(self) -> dict[str, Any]:
        """The server's part of ``/healthz``: 503 while starting or draining, so balancers look elsewhere."""
        status = "draining" if self.draining else "ok" if self._server is not None else "starting"
        return {"status": status, "active_streams": self.live_streams, "max_streams": self.config.max_streams}

    async def drain(self, grace: float | None = None) -> None:
        """Stop accepting streams, let open ones finish, and end the rest after ``grace`` seconds."""
        self.draining = True
        try:
            if self._server is None:
                return
            self._server.close(close_connections=False)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.drain_timeout if grace is None else grace):
                    await self._no_sessions.wait()
            for session in list(self._sessions):
                session.terminate(
                    StreamException("ServiceUnavailableException", "The server is shutting down.")
                )
            await self._server.wait_closed()
        finally:
            await self._close_observability()

    async def _close_observability(self) -> None:
        if self.observability is not None:
            await self.observability.close()
            self.observability = None

    async def stop(self) -> None:
        """End every stream now and close the listening socket."""
        await self.drain(grace=0)

    async def serve_forever(self) -> None:
        """Run until SIGTERM or SIGINT, then drain open streams."""
        if self._server is None:
            await self.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
            log.info("draining %d open stream(s)", self.live_streams)
            await self.drain()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def __aenter__(self) -> TranscribeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- handshake -----------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        normalize_headers(request.headers)
        path, query = split_target(request.path)
        if path != STREAM_PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, f"No such endpoint {path}; use {STREAM_PATH}.\n")
        number = self._arrivals
        self._arrivals += 1
        request_id = new_request_id()
        admission = Admission(
            number=number,
            request_id=request_id,
            session_id=str(uuid.uuid4()),
            peer=_peer(connection),
            faults=self.config.faults.for_stream(number),
        )
        refuse_status = admission.faults.refuse_status
        if refuse_status is not None:
            injected = StreamException.named(_exception_for_status(refuse_status), "Injected fault.")
            return self._refusal(connection, admission, injected, status=refuse_status)
        try:
            self._admit(admission, request, query)
        except StreamException as exc:
            admission.error = exc
            if self.config.rejection == "http":
                return self._refusal(connection, admission, exc)
        self._admissions[connection] = admission
        return None

    def _admit(self, admission: Admission, request: Request, query: list[tuple[str, str]]) -> None:
        region = self.config.region or DEFAULT_REGION
        if self.config.auth:
            try:
                signing = verify_presigned_url(
                    query,
                    host=request.headers.get("Host", ""),
                    path=request.path,
                    store=self.config.credentials,
                    now=self.config.clock(),
                    region=self.config.region,
                )
            except AuthFailure as exc:
                raise StreamException(exc.exception_name, exc.message, exc.http_status) from None
            admission.signing = signing
            admission.access_key = mask_key(signing.access_key_id)
            region = signing.region
        params = {name: value for name, value in query if name not in AUTH_PARAMS}
        try:
            config = TranscribeConfig.from_query_params(params, region)
        except ConfigurationError as exc:
            raise bad_request(exc.message) from None
        try:
            admission.vocabulary_filter = VocabularyFilter.for_stream(
                self.config.vocabulary_filters,
                [config.vocabulary_filter_name or "", *config.vocabulary_filter_names],
                config.vocabulary_filter_method,
            )
        except LookupError as exc:
            raise bad_request(str(exc.args[0])) from None
        admission.config = config
        admission.session_id = config.session_id or admission.session_id
        if self.registry.is_full():
            raise too_many_streams(self.config.max_streams)
        try:
            # One provider per channel: channel identification transcribes each channel on its own.
            admission.providers = [self.engine(config) for _ in range(config.channels)]
        except ConfigurationError as exc:
            raise bad_request(exc.message) from None

    def _refusal(
        self,
        connection: ServerConnection,
        admission: Admission,
        exception: StreamException,
        status: int | None = None,
    ) -> Response:
        """Refuse the upgrade as the service's HTTP errors look, and log the stream's one line."""
        status = status or exception.http_status
        self._session(connection, admission).refuse(exception, status)
        body = json.dumps({"Message": exception.message}) + "\n"
        response = connection.respond(status, body)
        response.headers["Content-Type"] = "application/json"
        response.headers["x-amzn-ErrorType"] = exception.name
        response.headers["x-amzn-RequestId"] = admission.request_id
        return response

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> Response | None:
        admission = self._admissions.get(connection)
        if admission is not None and response.status_code == HTTPStatus.SWITCHING_PROTOCOLS:
            response.headers["x-amzn-RequestId"] = admission.request_id
            response.headers["x-amzn-SessionId"] = admission.session_id
        elif admission is not None:
            # websockets refused the upgrade itself (a malformed handshake): nothing will run.
            self._admissions.pop(connection, None)
        return None

    # --- streams -------------------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        admission = self._admissions.pop(connection, None)
        if admission is None:
            return
        session = self._session(connection, admission)
        self._sessions.add(session)
        self._no_sessions.clear()
        try:
            await session.run()
        finally:
            self._sessions.discard(session)
            if not self._sessions:
                self._no_sessions.set()

    def _session(self, connection: ServerConnection, admission: Admission) -> StreamSession:
        return StreamSession(
            connection,
            admission,
            self.config,
            self.registry,
            engine_name=self.engine_name,
            telemetry=self.telemetry,
        )


def _exception_for_status(status: int) -> str:
    return {
        403: "UnrecognizedClientException",
        409: "ConflictException",
        429: "LimitExceededException",
        500: "InternalFailureException",
        503: "ServiceUnavailableException",
    }.get(status, "BadRequestException" if status < 500 else "ServiceUnavailableException")


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


@contextlib.asynccontextmanager
async def serve_in_background(config: ServerConfig) -> AsyncIterator[TranscribeServer]:
    """Run a server in this event loop (``port=0`` for a free port) for the duration of the block."""
    server = TranscribeServer(config)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def run_server(config: ServerConfig) -> None:
    """Serve until SIGTERM/SIGINT, then drain (what ``beluga serve`` runs)."""
    server = TranscribeServer(config)
    await server.start()
    await server.serve_forever()
