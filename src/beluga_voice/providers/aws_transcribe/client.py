"""The asyncio adapter: moves bytes between ``websockets`` and the sans-I/O :class:`TranscribeStream`.

Three concurrent parts per stream: a sender (audio source -> uniform chunks -> frames), a receiver
(frames -> results), and the consumer (this generator), joined by one queue. The current
connection lives in :class:`StreamRunner` and is opened through ``open_url`` so that a new
connection (with a freshly presigned URL) can replace it while the sender keeps its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from beluga_voice.audio.chunker import rechunk
from beluga_voice.audio.pacer import paced
from beluga_voice.errors import (
    BelugaError,
    ProtocolError,
    StreamConnectionError,
    StreamTimeoutError,
)
from beluga_voice.providers.aws_transcribe.messages import error_for_upgrade
from beluga_voice.providers.aws_transcribe.protocol import MAX_INCOMING_MESSAGE, TranscribeStream
from beluga_voice.providers.aws_transcribe.redaction import redact
from beluga_voice.stt.model import TranscriptResult
from beluga_voice.stt.provider import AudioStream, ConnectionEvent, ConnectionListener

logger = logging.getLogger("beluga_voice.aws")


@dataclass(frozen=True)
class ClientOptions:
    """Transport settings of the AWS client (the service options live in ``TranscribeConfig``)."""

    connect_timeout: float = 10.0
    drain_timeout: float = 10.0
    """After the end of audio: give up if the service sends nothing for this long before closing."""
    max_speed: float | None = 1.0
    """Audio is sent at most this many times faster than real time (``None``: as fast as read)."""
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    ssl_context: ssl.SSLContext | None = None
    user_agent: str = "beluga-voice"


@dataclass(frozen=True)
class ConnectionInfo:
    """What the service said about a new connection (from the 101 response headers)."""

    request_id: str | None
    session_id: str | None
    host: str

    def describe(self) -> str:
        return f"host={self.host} request-id={self.request_id} session-id={self.session_id}"


class _RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs request lines with the query; this keeps signatures out of every record."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self.logger.log(level, redact(text), **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs


_ws_logger = _RedactingLogger(logging.getLogger("beluga_voice.aws.websocket"), {})


async def open_connection(url: str, options: ClientOptions) -> tuple[ClientConnection, ConnectionInfo]:
    """Open the WebSocket; every failure becomes a typed error without the URL's secrets."""
    host = url.split("//", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    try:
        ws = await connect(
            url,
            open_timeout=options.connect_timeout,
            ping_interval=options.ping_interval,
            ping_timeout=options.ping_timeout,
            close_timeout=2.0,
            compression=None,  # the service does not negotiate it; saves CPU on audio
            max_size=MAX_INCOMING_MESSAGE,
            user_agent_header=options.user_agent,
            ssl=options.ssl_context if url.startswith("wss:") else None,
            logger=_ws_logger,
        )
    except InvalidStatus as exc:
        response = exc.response
        raise error_for_upgrade(
            response.status_code, bytes(response.body or b""), response.headers.get("x-amzn-ErrorType")
        ) from None
    except TimeoutError:
        raise StreamTimeoutError(
            f"no WebSocket handshake from {host} within {options.connect_timeout:g} s; "
            "check the network, a proxy, or endpoint_url"
        ) from None
    except ssl.SSLError as exc:
        raise StreamConnectionError(
            f"TLS with {host} failed: {exc.reason or exc}; check the certificate or endpoint_url "
            "(a private CA needs ssl_context=...)",
            retryable=False,
        ) from None
    except OSError as exc:
        raise StreamConnectionError(f"cannot connect to {host}: {exc.strerror or exc}") from None
    except InvalidURI:
        raise ProtocolError(f"invalid endpoint URL for host {host}") from None
    except InvalidHandshake as exc:
        raise StreamConnectionError(f"WebSocket handshake with {host} failed: {redact(str(exc))}") from None
    headers = ws.response.headers if ws.response is not None else None
    info = ConnectionInfo(
        request_id=headers.get("x-amzn-RequestId") if headers else None,
        session_id=headers.get("x-amzn-SessionId") if headers else None,
        host=host,
    )
    return ws, info


@dataclass(frozen=True)
class _Failure:
    error: BaseException


@dataclass(frozen=True)
class _Closed:
    error: BelugaError | None


class _AudioSent:
    """The sender has sent the end-of-stream frame."""


_Item = TranscriptResult | _Failure | _Closed | _AudioSent


class StreamRunner:
    """Runs one logical stream: connection, sender, receiver, drain, cleanup.

    Reconnection (issue 6) plugs in at :meth:`_connect` (a new URL per connection; the timeline
    replays buffered audio) and at the ``_Closed``/``_Failure`` items of the consumer loop.
    """

    def __init__(
        self,
        open_url: Callable[[], Awaitable[str]],
        stream: TranscribeStream,
        options: ClientOptions,
        *,
        chunk_size: int,
        sample_rate: int,
        channels: int,
        on_event: ConnectionListener | None = None,
    ) -> None:
        self._open_url = open_url
        self._stream = stream
        self._options = options
        self._chunk_size = chunk_size
        self._sample_rate = sample_rate
        self._channels = channels
        self._on_event = on_event
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.info: ConnectionInfo | None = None

    async def results(self, audio: AudioStream) -> AsyncIterator[TranscriptResult]:
        """Results in order until the service closes after the end of audio."""
        try:
            await self._connect(attempt=1)
            self._spawn(self._send(audio))
            async for result in self._consume():
                yield result
            self._emit(ConnectionEvent("closed", detail=self.info.describe() if self.info else ""))
        except BelugaError as exc:
            detail = self.info.describe() if self.info else ""
            self._emit(ConnectionEvent("disconnected", attempt=1, error=exc, detail=detail))
            raise
        finally:
            await self._shutdown()

    async def _connect(self, attempt: int) -> None:
        url = await self._open_url()
        self._ws, self.info = await open_connection(url, self._options)
        logger.debug("connected: %s", self.info.describe())
        replay = self._stream.connect()
        for frame in replay:
            await self._ws.send(frame)
        self._spawn(self._receive(self._ws))
        self._emit(ConnectionEvent("connected", attempt=attempt, detail=self.info.describe()))

    async def _consume(self) -> AsyncIterator[TranscriptResult]:
        loop = asyncio.get_running_loop()
        draining = False
        while True:
            if draining:
                try:
                    async with asyncio.timeout(self._options.drain_timeout):
                        item = await self._queue.get()
                except TimeoutError:
                    raise StreamTimeoutError(
                        f"the service sent nothing for {self._options.drain_timeout:g} s after the end of "
                        "the audio and did not close the stream; the last results may be missing"
                    ) from None
            else:
                item = await self._queue.get()
            if isinstance(item, TranscriptResult):
                yield item
            elif isinstance(item, _AudioSent):
                draining = True
                logger.debug("end of stream sent at %.3f", loop.time())
            elif isinstance(item, _Closed):
                if item.error is not None:
                    raise item.error
                return
            else:
                raise item.error

    async def _send(self, audio: AudioStream) -> None:
        chunks = rechunk(audio, self._chunk_size)
        if self._options.max_speed is not None:
            chunks = paced(chunks, self._sample_rate, self._channels, self._options.max_speed)
        try:
            async for chunk in chunks:
                frame = self._stream.audio(chunk)
                if frame is not None:
                    await self._current().send(frame)
            await self._current().send(self._stream.end())
            self._queue.put_nowait(_AudioSent())
        except ConnectionClosed:
            return  # the receiver reports why the connection closed
        except BaseException as exc:  # the application's audio source failed: surface its error
            if not isinstance(exc, asyncio.CancelledError):
                self._queue.put_nowait(_Failure(exc))
            raise

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for data in ws:
                for result in self._stream.receive(data):
                    self._queue.put_nowait(result)
        except ConnectionClosed:
            pass
        except BelugaError as exc:
            self._queue.put_nowait(_Failure(exc))
            return
        self._queue.put_nowait(_Closed(self._stream.closed(ws.close_code, ws.close_reason or "")))

    def _current(self) -> ClientConnection:
        if self._ws is None:
            raise StreamConnectionError("no open connection")
        return self._ws

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        task.add_done_callback(_swallow)
        self._tasks.append(task)

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()

    def _emit(self, event: ConnectionEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # a listener's bug must not kill the stream
                logger.exception("connection event listener failed")


def _swallow(task: asyncio.Task[None]) -> None:
    # Errors travel through the queue; this only keeps asyncio from logging them a second time.
    if not task.cancelled():
        task.exception()
