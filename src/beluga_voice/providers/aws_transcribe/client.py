"""The asyncio adapter: moves bytes between ``websockets`` and the sans-I/O :class:`TranscribeStream`.

:class:`StreamRunner` runs one logical stream over as many connections as it takes: each is opened
through ``open_url`` (a freshly presigned URL, fresh credentials, a new session id), starts with
the replay of the audio not yet covered by finals, and is replaced with backoff when it fails with a
retryable error. The decisions live in sans-I/O pieces (``protocol``, ``backoff``, ``keepalive``,
``resilience``); this module only moves bytes and keeps time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    MutableMapping,
)
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from beluga_voice.audio.chunker import MAX_CHUNK_MS, Chunker, chunk_bytes, rechunk
from beluga_voice.audio.pacer import paced
from beluga_voice.audio.pcm import PCM_SAMPLE_WIDTH
from beluga_voice.errors import (
    BelugaError,
    ProtocolError,
    StreamConnectionError,
    StreamTimeoutError,
)
from beluga_voice.providers.aws_transcribe.backoff import Backoff, Outage
from beluga_voice.providers.aws_transcribe.keepalive import DrainWatch, IdleScheduler
from beluga_voice.providers.aws_transcribe.messages import error_for_upgrade
from beluga_voice.providers.aws_transcribe.protocol import MAX_INCOMING_MESSAGE, TranscribeStream
from beluga_voice.providers.aws_transcribe.redaction import redact
from beluga_voice.providers.aws_transcribe.resilience import (
    NO_RECONNECT,
    IdlePolicy,
    ReconnectPolicy,
    StreamStats,
)
from beluga_voice.stt.model import TranscriptResult
from beluga_voice.stt.provider import AudioStream, ConnectionEvent, ConnectionListener
from beluga_voice.telemetry.stream import StreamTelemetry

logger = logging.getLogger("beluga_voice.aws")

CLOSE_TIMEOUT = 1.0
"""How long a close handshake may take before the socket is dropped (a live peer answers in ms)."""
PACE_TICK = 0.2
"""Recorded audio paced to real time leaves in bursts every 200 ms, each burst (two 100 ms chunks)
joined into one AudioEvent of at most ``MAX_CHUNK_MS``: one wake-up and one socket write per tick
instead of one per chunk, and never ahead of real time (live audio is never held back at all)."""
STARVING_HOLD = 8.0
"""The longest a full replay buffer holds the source while the live connection goes unanswered: well
inside the 15 s without audio after which Transcribe ends a stream."""


@dataclass(frozen=True)
class ClientOptions:
    """Transport settings of the AWS client (the service options live in ``TranscribeConfig``)."""

    connect_timeout: float = 10.0
    drain_timeout: float = 10.0
    """After the end of audio: give up if the service sends nothing for this long before closing."""
    max_speed: float | None = 1.0
    """Audio is sent at most this many times faster than real time (``None``: as fast as read)."""
    ping_interval: float | None = 5.0
    """Seconds between WebSocket pings (websockets' own keepalive; ``None``: no pings)."""
    ping_timeout: float | None = 10.0
    """A ping unanswered this long means the connection is dead (liveness, never result silence)."""
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
            ping_interval=None,  # liveness is StreamRunner._keepalive: pings, and messages as proof of life
            close_timeout=CLOSE_TIMEOUT,
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


OpenUrl = Callable[[int], Awaitable[str]]
"""Presigns the URL of connection number ``n`` (1-based) from freshly resolved credentials."""


@dataclass(eq=False)
class _Link:
    """One WebSocket connection of the stream, from its handshake to its outcome."""

    number: int
    ws: ClientConnection
    info: ConnectionInfo
    opened_at: float
    drain: DrainWatch
    outcome: asyncio.Future[BelugaError | None]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    end_sent: bool = False
    idle_close: bool = False
    last_message: float = 0.0
    """When the service last sent anything on this connection (``clock()`` seconds)."""
    sent_seconds: float = 0.0
    """Audio sent on this connection: what the service may still be reading when a ping goes out."""
    held_since: float | None = None
    """When the source was first held for this connection since its last final (``clock()``)."""

    def ahead(self, now: float) -> float:
        """Seconds of audio sent beyond real time since the connection opened (a replay, a fast feed)."""
        return max(0.0, self.sent_seconds - (now - self.opened_at))

    @property
    def over(self) -> bool:
        return self.outcome.done()

    def finish(self, error: BelugaError | None) -> None:
        """The first outcome wins: a normal finish (``None``) or the error that ended it."""
        if not self.outcome.done():
            self.outcome.set_result(error)


@dataclass(frozen=True)
class _Done:
    """The stream finished: every final of the audio was delivered."""


@dataclass(frozen=True)
class _Raise:
    error: BaseException


_Item = TranscriptResult | _Done | _Raise


class StreamRunner:
    """Runs one logical stream over as many connections as it takes.

    Tasks: a supervisor (opens connections, waits for each to end, reconnects with backoff or
    gives up), a sender (audio source -> chunks -> the live connection, or the replay buffer while
    there is none), an idle loop (keep-alive silence or a lazy close), and per connection a receiver
    and, after the end of the audio, a drain watch. One lock orders everything that writes to a socket, so a new connection's replay
    and the next live chunk can neither interleave nor repeat. The consumer (:meth:`results`) only
    reads the queue, so a slow application never delays a reconnection.
    """

    def __init__(
        self,
        open_url: OpenUrl,
        stream: TranscribeStream,
        options: ClientOptions,
        *,
        chunk_size: int,
        sample_rate: int,
        channels: int,
        policy: ReconnectPolicy = NO_RECONNECT,
        idle: IdlePolicy | None = None,
        on_event: ConnectionListener | None = None,
        telemetry: StreamTelemetry | None = None,
        stats: StreamStats | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open_url = open_url
        self._stream = stream
        self._options = options
        self._chunk_size = chunk_size
        self._sample_rate = sample_rate
        self._channels = channels
        self._bytes_per_second = sample_rate * channels * PCM_SAMPLE_WIDTH
        self._policy = policy
        self._idle = idle
        self._on_event = on_event
        self._telemetry = telemetry
        self.stats = stats or StreamStats(stream.timeline.stats)
        self._rng = rng or random.Random()
        self._clock = clock
        self._backoff = Backoff(policy.base_delay, policy.max_delay)
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._live: _Link | None = None  # the connection that takes audio now
        self._last: _Link | None = None  # the newest connection, live or not
        self._link_ready = asyncio.Event()
        self._resume = asyncio.Event()
        self._progress = asyncio.Event()  # the live connection delivered a final
        self._audio_done = False
        self._unsent = False  # audio recorded while no connection took it
        self._awaiting_source = False  # the sender waits for the application's next chunk
        self._outage: Outage | None = None
        self._scheduler = IdleScheduler(idle or IdlePolicy(), clock())
        self._silence = bytes(chunk_size)
        self._last_replay_seconds = 0.0
        self.info: ConnectionInfo | None = None

    # --- the consumer --------------------------------------------------------------------------

    async def results(self, audio: AudioStream) -> AsyncIterator[TranscriptResult]:
        """Results in order until the last final of the audio; raises what ended the stream."""
        self._spawn(self._supervise(audio))
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, TranscriptResult):
                    yield item
                elif isinstance(item, _Done):
                    return
                else:
                    raise item.error
        finally:
            await self._shutdown()

    # --- the supervisor ------------------------------------------------------------------------

    async def _supervise(self, audio: AudioStream) -> None:
        try:
            link = await self._establish(None)
            self._spawn(self._send(audio))
            if self._idle is not None and isinstance(audio, AsyncIterable):
                # Audio in memory never leaves the application idle (its only waits are the
                # pacer's, shorter than ``after``): no idle watch, no wake-up a second for it.
                self._spawn(self._idle_loop())
            while True:
                error = await link.outcome
                await self._retire(link)
                if error is None:
                    self._outage = None  # it finished as asked: whatever outage came before is over
                    if not link.idle_close or await self._nothing_left_after_idle():
                        self._emit(ConnectionEvent("closed", link.number, detail=link.info.describe()))
                        self._queue.put_nowait(_Done())
                        return
                    link = await self._establish(None)
                    continue
                link = await self._recover(link, error)
        except Exception as exc:  # the stream's end: the consumer raises it (never a silent hang)
            self._queue.put_nowait(_Raise(exc))

    async def _recover(self, link: _Link, error: BelugaError) -> _Link:
        """A connection failed: give up (fatal) or open the next one."""
        now = self._clock()
        self._note_error(error)
        detail = link.info.describe()
        if not self._policy.retries(error):
            self._emit(ConnectionEvent("disconnected", link.number, error, detail=detail))
            raise error
        for retraction in self._stream.abandon():
            self._deliver(retraction)
        # Healthy = it made progress (new finals) or lasted; a flapping service that only repeats
        # replayed results stays one outage, which the attempt budget ends.
        progress = self._stream.timeline.connection_finals > 0
        healthy = progress or now - link.opened_at >= self._policy.healthy_after
        if healthy or self._outage is None:
            self._outage = Outage(started=now)
        self._emit(ConnectionEvent("disconnected", link.number, error, detail=detail))
        if self._idle is not None and self._idle.mode == "lazy" and self._idle_now(now):
            self._resume.clear()
            self._scheduler.closed()
            await self._resume.wait()  # lazy: reopen when audio resumes (or ends)
            now = self._clock()  # the outage (and its budget) starts when the audio does
            self._outage = Outage(started=now)
        return await self._establish(error, failed_at=now)

    async def _establish(self, failure: BelugaError | None, failed_at: float | None = None) -> _Link:
        """Open a connection, retrying retryable failures with backoff until the outage budget ends."""
        last = failure
        while True:
            outage = self._outage
            if outage is not None and (failure is not None or outage.attempts):
                now = self._clock()
                if outage.exhausted(now, self._policy.max_attempts, self._policy.max_outage):
                    assert last is not None
                    last.add_note(f"gave up reconnecting after {outage.describe(now)}")
                    self._emit(
                        ConnectionEvent(
                            "disconnected",
                            outage.attempts,
                            last,
                            detail=f"gave up after {outage.describe(now)}",
                        )
                    )
                    raise last
                attempt = outage.attempts + 1
                remaining = self._policy.max_outage - (now - outage.started)
                delay = min(self._backoff.delay(attempt, self._rng), max(0.0, remaining))
                self._emit(
                    ConnectionEvent("reconnecting", attempt, last, detail=f"next connection in {delay:.2f} s")
                )
                await asyncio.sleep(delay)
            try:
                link = await self._open()
            except BelugaError as exc:
                self._note_error(exc)
                if not self._policy.retries(exc):
                    self._emit(ConnectionEvent("disconnected", self.stats.connections + 1, exc))
                    raise
                if self._outage is None:
                    self._outage = Outage(started=failed_at if failed_at is not None else self._clock())
                self._outage.attempts += 1
                last = exc
                continue
            return self._opened(link, reconnection=failure is not None, failed_at=failed_at)

    def _opened(self, link: _Link, *, reconnection: bool, failed_at: float | None) -> _Link:
        outage = self._outage
        attempt = 1
        if outage is not None:
            outage.attempts += 1
            attempt = outage.attempts
        detail = link.info.describe()
        if reconnection:
            downtime = self._clock() - (failed_at if failed_at is not None else link.opened_at)
            replayed = self._last_replay_seconds
            self.stats.reconnects += 1
            self.stats.downtime_seconds += downtime
            if self._telemetry is not None:
                self._telemetry.reconnect(downtime)
            self._emit(ConnectionEvent("reconnected", attempt, None, downtime, replayed, detail))
        else:
            self._emit(ConnectionEvent("connected", attempt, detail=detail))
        return link

    async def _nothing_left_after_idle(self) -> bool:
        """After a lazy close: wait for audio; ``True`` if the audio ended with nothing more to send."""
        if not (self._audio_done and not self._unsent):
            self._emit(ConnectionEvent("closed", detail="idle: reopens when audio resumes"))
            await self._resume.wait()
        return self._audio_done and not self._unsent

    # --- one connection ------------------------------------------------------------------------

    async def _open(self) -> _Link:
        number = self.stats.connections + 1
        url = await self._open_url(number)
        ws, info = await open_connection(url, self._options)
        self.info = info
        logger.debug("connected: %s", info.describe())
        loop = asyncio.get_running_loop()
        link = _Link(
            number,
            ws,
            info,
            self._clock(),
            DrainWatch(self._options.drain_timeout),
            loop.create_future(),
        )
        self._last = link
        async with self._lock:
            frames = self._stream.connect()
            chunks = self._stream.replayed
            self._unsent = False
            try:
                for frame in frames:
                    await ws.send(frame)
                self._count_sent(link, sum(map(len, chunks)))
                if self._audio_done:
                    await ws.send(self._stream.end())
                    self._ended(link)
                self._live = link
                self._link_ready.set()
            except ConnectionClosed:
                pass  # refused after the upgrade, or dropped: the receiver reads why
        self._last_replay_seconds = self._stream.replayed_seconds if number > 1 else 0.0
        if self._last_replay_seconds and self._telemetry is not None:
            self._telemetry.audio_replayed(self._last_replay_seconds)
        link.tasks.append(self._spawn(self._receive(link)))
        link.tasks.append(self._spawn(self._keepalive(link)))
        return link

    async def _receive(self, link: _Link) -> None:
        stream = self._stream
        try:
            async for data in link.ws:
                link.last_message = now = self._clock()
                if link.end_sent:
                    link.drain.message(now)
                for result in stream.receive(data):
                    self._deliver(result)
                    if not result.is_partial:
                        self._progress.set()  # a new final: it trimmed the replay buffer
                        link.held_since = None
        except ConnectionClosed:
            pass
        except BelugaError as exc:
            link.finish(exc)
            return
        except Exception as exc:  # a bug must end the stream loudly, not leave it waiting
            link.finish(ProtocolError(f"unexpected failure reading the stream: {exc!r}"))
            return
        link.finish(stream.closed(link.ws.close_code, link.ws.close_reason or ""))

    async def _keepalive(self, link: _Link) -> None:
        """Liveness: a WebSocket ping every ``ping_interval``; dead when its pong is late and no
        message came from the service meanwhile.

        Never the absence of transcripts: a quiet service, music or a long utterance get no answer
        for minutes, and the connection is fine. Pings travel behind the audio, so the pong is owed
        ``ping_timeout`` after the service could have read, at real-time pace, the audio sent ahead
        of real time before it (a replay burst, a fast feed); a message counts as proof of life as
        much as a pong does.
        """
        interval, timeout = self._options.ping_interval, self._options.ping_timeout
        if interval is None:
            return
        ws = link.ws
        while not link.over:
            await asyncio.sleep(interval)
            sent_at = self._clock()
            try:
                async with asyncio.timeout(None if timeout is None else timeout + link.ahead(sent_at)):
                    await (await ws.ping())
                continue
            except TimeoutError:
                if link.last_message >= sent_at or link.over:
                    continue
            except ConnectionClosed:
                return  # the receiver reports why
            self.stats.dead_connections += 1
            self._stream.closed(None)  # the connection's state: failed
            link.finish(
                StreamTimeoutError(
                    f"the service answered neither a WebSocket ping nor anything else for "
                    f"{self._clock() - sent_at:.1f} s: the connection is dead"
                )
            )
            return

    def _ended(self, link: _Link) -> None:
        """The end of the audio went out on ``link``: from now on the service owes a close."""
        link.end_sent = True
        now = self._clock()
        if self._options.ping_interval is None or link.ahead(now) <= 0:
            link.drain.ended(now)
        link.tasks.append(self._spawn(self._watch_drain(link)))

    async def _watch_drain(self, link: _Link) -> None:
        """After the end of the audio: a service that neither answers nor closes is stuck.

        Reconnected once per stream at most (the replay is then billed again); a second stall ends
        the stream with the error, so a wedged service never costs more than one replay.
        Audio sent ahead of real time (a fast feed, a replay) may still wait unread in the socket's
        buffers behind a slow reader: the wait starts once the service has read up to the end,
        which the pong to a ping sent behind it proves (a dead connection is the keepalive's job).
        """
        if not link.drain.ending:
            timeout = self._options.ping_timeout
            try:
                async with asyncio.timeout(None if timeout is None else timeout + link.ahead(self._clock())):
                    await (await link.ws.ping())
            except ConnectionClosed:
                return  # the receiver reports why
            except TimeoutError:
                pass  # no pong: the drain's own deadline decides
            link.drain.ended(self._clock())
        while not link.over:
            now = self._clock()
            error = link.drain.check(now)
            if error is not None:
                self.stats.stalled_drains += 1
                if self.stats.stalled_drains > 1:
                    error.retryable = False
                    error.add_note("the service stalled after the end of the audio twice; not retried again")
                logger.debug("drain: %s (%s)", error.message, link.info.describe())
                link.finish(error)
                return
            deadline = link.drain.deadline()
            assert deadline is not None
            await asyncio.sleep(max(0.0, deadline - now))

    async def _retire(self, link: _Link) -> None:
        """Stop a connection that ended: no more audio goes to it, its tasks end, its socket closes."""
        if self._live is link:
            self._live = None
            self._link_ready.clear()
        for task in link.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if link.outcome.result() is None:
            with contextlib.suppress(Exception):
                await link.ws.close()
        else:
            link.ws.transport.abort()  # a failed connection gets no close handshake to wait for
        await asyncio.gather(*link.tasks, return_exceptions=True)

    # --- audio ---------------------------------------------------------------------------------

    async def _send(self, audio: AudioStream) -> None:
        speed = self._options.max_speed
        chunks: AsyncIterator[bytes]
        if speed is not None and not isinstance(audio, AsyncIterable):
            burst = chunk_bytes(self._sample_rate, MAX_CHUNK_MS, self._channels)
            # Audio in memory: cut it without a loop turn per piece; the shared pace clock is the
            # only wake-up per chunk (one timer for every paced stream of the loop).
            chunks = paced(
                _uniform(audio, self._chunk_size),
                self._sample_rate,
                self._channels,
                speed,
                tick=PACE_TICK,
                join_up_to=max(self._chunk_size, burst),
            )
        else:
            chunks = rechunk(audio, self._chunk_size)
            if speed is not None:
                chunks = paced(chunks, self._sample_rate, self._channels, speed, tick=PACE_TICK)
        source = aiter(chunks)
        try:
            while True:
                # Idle means waiting for the application, never waiting for a socket or a connection.
                self._scheduler.audio(self._clock())
                self._awaiting_source = True
                try:
                    chunk = await anext(source)
                except StopAsyncIteration:
                    break
                finally:
                    self._awaiting_source = False
                await self._accept(chunk)
            await self._end_audio()
        except BaseException as exc:  # the application's audio source failed: surface its error
            if not isinstance(exc, asyncio.CancelledError):
                self._queue.put_nowait(_Raise(exc))
            raise

    async def _accept(self, chunk: bytes) -> None:
        if self._stream.timeline.buffer_full(len(chunk)):
            await self._hold_while_unanswered(len(chunk))
        async with self._lock:
            link = self._usable()
            frame = self._stream.audio(chunk, send=link is not None, piece=self._chunk_size)
            if self._telemetry is not None:
                self._telemetry.audio_sent(len(chunk) / self._bytes_per_second)
            if link is None:
                self._unsent = True
                self._resume.set()
                return
            if frame is None:
                return
            try:
                await link.ws.send(frame)
            except ConnectionClosed:
                return  # the receiver reports why; the chunk waits in the replay buffer
            self._count_sent(link, len(chunk))

    async def _hold_while_unanswered(self, incoming: int) -> None:
        """The replay buffer is full: hold the source while the oldest audio may still be needed.

        ``incoming``: the bytes waiting to go in (a paced burst joins several chunks into one).

        It may be needed while no connection is up, while the service may not have read it yet (the
        live connection has been sent it less than its real-time length ago: a replay, a fast feed, a
        source catching up after a hold), and during an outage until the connection proves healthy (a new
        final, or up ``healthy_after`` seconds). Each new final trims the buffer and lets audio in
        again. Otherwise the oldest audio leaves the buffer: a service that has had the time to read
        it and answers nothing (music, a quiet service) must not stop the stream.
        """
        held_from: float | None = None
        while self._stream.timeline.buffer_full(incoming):
            link = self._usable()
            if link is None:
                self._resume.set()  # a lazily closed stream reopens now
                timeout: float | None = None
                # (set while a failed connection waits to be retired: look again a tick later)
                ready: Awaitable[Any] = (
                    asyncio.sleep(PACE_TICK) if self._link_ready.is_set() else self._link_ready.wait()
                )
            else:
                if link.held_since is None:
                    link.held_since = self._clock()
                timeout = self._unread_for(link, link.held_since)
                if timeout <= 0:
                    break
                self._progress.clear()
                ready = self._progress.wait()
            if held_from is None:
                held_from = self._clock()
                logger.info(
                    "replay buffer full (%.0f s not yet answered): holding the audio source",
                    self._stream.timeline.buffered_seconds,
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await ready
        if held_from is not None:
            self.stats.held_seconds += self._clock() - held_from

    def _unread_for(self, link: _Link, held_since: float) -> float:
        """Seconds the buffered audio may still be needed on ``link`` unless a final comes (0: never).

        It may be until the service has had the time to read all of it at real time, and during an
        outage until the link proves healthy. But a held source starves the connection, and the
        service ends a stream that gets no audio for 15 s (holding for all of a 30 s replay of music
        would): after ``STARVING_HOLD`` seconds held since the link's last final (``held_since``),
        the link only waits until the oldest audio has been read, which lets the source go at real time.
        """
        now = self._clock()
        ahead = link.ahead(now)
        waits = ahead
        if self._outage is not None and not self._stream.timeline.connection_finals:
            waits = max(waits, self._policy.healthy_after - (now - link.opened_at))
        held = now - held_since
        if held + waits > STARVING_HOLD:
            oldest_sent_before = (
                self._stream.timeline.buffered_seconds - self._chunk_size / self._bytes_per_second
            )
            waits = max(STARVING_HOLD - held, ahead - oldest_sent_before)
        return max(waits, 0.0)

    async def _end_audio(self) -> None:
        async with self._lock:
            self._audio_done = True
            self._resume.set()
            link = self._usable()
            if link is None:
                return  # the next connection ends the stream after its replay
            with contextlib.suppress(ConnectionClosed):
                await link.ws.send(self._stream.end())
                self._ended(link)

    def _usable(self) -> _Link | None:
        """The live connection if audio may go to it (never into a failed or ending one)."""
        link = self._live
        if link is None or link.over or not self._stream.streaming:
            return None
        return link

    def _count_sent(self, link: _Link, nbytes: int) -> None:
        seconds = nbytes / self._bytes_per_second
        self.stats.sent_seconds += seconds
        link.sent_seconds += seconds

    # --- silence -------------------------------------------------------------------------------

    def _idle_now(self, now: float) -> bool:
        """The application has sent nothing for a while (not: the stream is blocked)."""
        after = (self._idle or IdlePolicy()).after
        return self._awaiting_source and not self._audio_done and now - self._scheduler.last_audio >= after

    async def _idle_loop(self) -> None:
        assert self._idle is not None
        scheduler, chunk_seconds = self._scheduler, self._chunk_size / self._bytes_per_second
        while not self._audio_done:
            action, wait = scheduler.next_action(self._clock())
            if action == "wait" or not self._awaiting_source:
                await asyncio.sleep(min(wait, self._idle.after) if action == "wait" else self._idle.after)
                continue
            async with self._lock:
                now = self._clock()
                action, _ = scheduler.next_action(now)  # audio may have come while we waited
                if not self._awaiting_source:
                    continue
                link = None if self._audio_done else self._usable()
                if action == "keepalive":
                    if link is None:
                        scheduler.keepalive_skipped(now)
                        continue
                    with contextlib.suppress(ConnectionClosed):
                        await link.ws.send(self._stream.keepalive(self._silence))
                        self._count_sent(link, len(self._silence))
                    scheduler.keepalive_sent(now, chunk_seconds)
                    self.stats.keepalive_seconds += chunk_seconds
                    if self._telemetry is not None:
                        self._telemetry.keepalive_sent(chunk_seconds)
                elif action == "close":
                    scheduler.closed()
                    if link is None:
                        continue
                    logger.debug("idle for %.1f s: closing until audio resumes", now - scheduler.last_audio)
                    link.idle_close = True
                    self._resume.clear()
                    self._unsent = False
                    self._live = None
                    self._link_ready.clear()
                    self.stats.idle_closes += 1
                    with contextlib.suppress(ConnectionClosed):
                        await link.ws.send(self._stream.end())
                        self._ended(link)

    # --- plumbing ------------------------------------------------------------------------------

    def _deliver(self, result: TranscriptResult) -> None:
        self._queue.put_nowait(result)
        if self._telemetry is not None:
            self._telemetry.result(result)

    def _note_error(self, error: BelugaError) -> None:
        self.stats.errors.append(error.code)
        if self._telemetry is not None:
            self._telemetry.error(error)
        logger.debug("stream error (%s): %s", "retryable" if error.retryable else "fatal", error.message)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        task.add_done_callback(_swallow)
        self._tasks.append(task)
        return task

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        link = self._last
        if link is not None:
            with contextlib.suppress(Exception):
                await link.ws.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _emit(self, event: ConnectionEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # a listener's bug must not kill the stream
                logger.exception("connection event listener failed")


def _uniform(pieces: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Uniform chunks of in-memory pieces of any size (the last one may be shorter)."""
    chunker = Chunker(size)
    for piece in pieces:
        yield from chunker.feed(piece)
    rest = chunker.flush()
    if rest:
        yield rest


def _swallow(task: asyncio.Task[None]) -> None:
    # Errors travel through the queue; this only keeps asyncio from logging them a second time.
    if not task.cancelled():
        task.exception()
