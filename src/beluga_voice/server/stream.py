"""One transcription stream over one WebSocket: audio in, results out, exceptions as the service sends them.

Tasks per stream: a receiver (frames -> PCM per channel, with the idle timeout and the size and
flood limits; ``flac`` and ``ogg-opus`` are decoded to PCM at the declared rate as frames complete), one engine task per channel (PCM -> shaped results), a sender (results -> frames, in
order, with an injected delay if asked), and timers (maximum duration, faults). Every queue between
them is bounded, so a stream that floods or stops reading holds a fixed amount of memory.

Each stream, refused ones included, reports to a ``StreamTelemetry(component="server")``: audio as it
arrives (a few float operations per frame), every result as it is queued, and how it ended.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from beluga_voice.audio.compressed import CompressedDecoder
from beluga_voice.audio.pcm import PCM_SAMPLE_WIDTH, float_to_pcm16
from beluga_voice.errors import (
    AudioFormatError,
    BelugaError,
    ProtocolError,
    StreamConnectionError,
    StreamTimeoutError,
)
from beluga_voice.providers.aws_transcribe.config import TranscribeConfig
from beluga_voice.providers.aws_transcribe.eventstream import EventStreamError, decode_message
from beluga_voice.providers.aws_transcribe.messages import (
    AudioChunk,
    classify,
    error_for_exception,
    exception_event,
    transcript_event,
)
from beluga_voice.providers.aws_transcribe.transcript_json import transcript_event_payload
from beluga_voice.server.auth import AuthFailure, FrameSignatureChain, SigningContext
from beluga_voice.server.exceptions import (
    STREAM_TOO_BIG,
    UNEXPECTED_FRAME,
    StreamException,
    bad_request,
    idle_timeout_message,
)
from beluga_voice.server.faults import StreamFaults
from beluga_voice.server.limits import StreamRegistry, stream_too_long
from beluga_voice.server.results import ResultShaper
from beluga_voice.server.vocabulary import VocabularyFilter
from beluga_voice.stt.provider import STTProvider
from beluga_voice.telemetry.metrics import Telemetry, default_telemetry
from beluga_voice.telemetry.stream import StreamTelemetry

if TYPE_CHECKING:
    from beluga_voice.server.settings import ServerConfig

log = logging.getLogger("beluga_voice.server")

AUDIO_QUEUE_SECONDS = 20.0
"""Audio a channel may hold for its engine before the socket stops being read."""
OUTBOX_FRAMES = 64
FRAMES_PER_SECOND = 1000
BURST_FRAMES_PER_AHEAD_SECOND = 100


class AudioQueue(asyncio.Queue[bytes | None]):
    """Audio waiting for an engine, bounded in bytes rather than in chunks.

    The local engine holds its input back while a decode it depends on runs; with a queue of a few
    chunks the socket would stop being read at once, and the pings and pongs behind the audio would
    go unanswered until either side's keepalive gave up on a healthy stream.
    """

    def __init__(self, limit_bytes: int) -> None:
        super().__init__()
        self._limit = limit_bytes
        self._bytes = 0

    def _put(self, item: bytes | None) -> None:
        super()._put(item)
        self._bytes += len(item or b"")

    def _get(self) -> bytes | None:
        item: bytes | None = super()._get()
        self._bytes -= len(item or b"")
        return item

    def full(self) -> bool:
        return self._bytes >= self._limit


@dataclass
class Admission:
    """What the handshake learned about a stream: its parameters, or why it is refused."""

    number: int
    request_id: str
    session_id: str
    peer: str
    faults: StreamFaults
    config: TranscribeConfig | None = None
    error: StreamException | None = None
    signing: SigningContext | None = None
    access_key: str | None = None
    providers: list[STTProvider] = field(default_factory=list)
    vocabulary_filter: VocabularyFilter | None = None


@dataclass
class StreamStats:
    audio_bytes: int = 0
    frames: int = 0
    results: int = 0
    finals: int = 0
    started: float = field(default_factory=time.monotonic)


class _Outbox:
    """Frames waiting for the socket, in order; results wait for room, the last frames never do.

    One future for the sender while it waits, one per producer waiting for room: a result costs a
    deque append and, if the sender was idle, one wake-up (no lock or condition per frame).
    """

    def __init__(self, limit: int) -> None:
        self._items: collections.deque[tuple[bytes | None, float]] = collections.deque()
        self._limit = limit
        self._taker: asyncio.Future[None] | None = None  # the sender, waiting for a frame
        self._room: collections.deque[asyncio.Future[None]] = collections.deque()  # producers waiting

    async def put(self, frame: bytes, ready_at: float) -> None:
        while len(self._items) >= self._limit:
            waiter = asyncio.get_running_loop().create_future()
            self._room.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._room:
                    self._room.remove(waiter)
        self._append((frame, ready_at))

    async def put_last(self, frame: bytes | None) -> None:
        self._append((frame, 0.0))

    def _append(self, item: tuple[bytes | None, float]) -> None:
        self._items.append(item)
        taker = self._taker
        if taker is not None and not taker.done():
            taker.set_result(None)

    async def get(self) -> tuple[bytes | None, float]:
        while not self._items:
            self._taker = asyncio.get_running_loop().create_future()
            try:
                await self._taker
            finally:
                self._taker = None
        item = self._items.popleft()
        while self._room:
            waiter = self._room.popleft()
            if not waiter.done():
                waiter.set_result(None)  # room for one more
                break
        return item


class StreamSession:
    """Runs one admitted (or refused) stream to its end and writes its one log line."""

    def __init__(
        self,
        connection: ServerConnection,
        admission: Admission,
        settings: ServerConfig,
        registry: StreamRegistry,
        *,
        engine_name: str = "local",
        telemetry: Telemetry | None = None,
    ) -> None:
        self.connection = connection
        self.admission = admission
        self.settings = settings
        self.registry = registry
        self.engine_name = engine_name
        self._hub = telemetry or settings.telemetry or default_telemetry()
        self.telemetry: StreamTelemetry | None = None
        self.session_id = admission.session_id
        self.stats = StreamStats()
        self.outcome = "completed"
        self._failure: StreamException | None = None
        self._finished = asyncio.Event()
        self._client_gone = False
        self._dropped = False
        self._black_holed = False  # the stall fault: nothing read, answered or sent any more
        self._stalled = False
        self._outbox = _Outbox(OUTBOX_FRAMES)
        self._engines_left = 0
        self._remainder = b""
        self._reading_since: float | None = None  # loop.time() the receiver began waiting for a frame

    # --- control -------------------------------------------------------------------------------

    def terminate(self, exception: StreamException) -> None:
        """End the stream with ``exception`` (conflicts, limits, shutdown, faults)."""
        if self._failure is None and not self._finished.is_set():
            self._failure = exception
            self._finished.set()

    def _client_left(self, how: str) -> None:
        if not self._finished.is_set():
            self._client_gone = True
            self.outcome = how
            self._finished.set()

    # --- the stream ----------------------------------------------------------------------------

    async def run(self) -> None:
        telemetry = self.telemetry = self._open_telemetry()
        try:
            if self.admission.error is not None:
                self._failure = self.admission.error
                await self._finish_with_exception()
                return
            try:
                self.registry.register(self)
            except StreamException as exc:
                self._failure = exc
                await self._finish_with_exception()
                return
            try:
                await self._serve(telemetry)
            finally:
                self.registry.unregister(self)
        finally:
            self._close_telemetry()
            self.write_log_line()

    def refuse(self, exception: StreamException, status: int) -> None:
        """Account for an upgrade refused with an HTTP status: metrics and the one log line."""
        self._failure = exception
        self.outcome = f"refused with HTTP {status}: {exception}"
        self.telemetry = self._open_telemetry()
        self._close_telemetry()
        self.write_log_line()

    async def _finish_with_exception(self) -> None:
        assert self._failure is not None
        self.outcome = str(self._failure)
        try:
            await self.connection.send(exception_event(self._failure.name, self._failure.message))
            await self.connection.close()
        except ConnectionClosed:
            pass

    async def _serve(self, telemetry: StreamTelemetry) -> None:
        config = self.admission.config
        assert config is not None
        channels = config.channels
        queue_bytes = round(AUDIO_QUEUE_SECONDS * config.sample_rate * PCM_SAMPLE_WIDTH)
        queues: list[asyncio.Queue[bytes | None]] = [AudioQueue(queue_bytes) for _ in range(channels)]
        shapers = [
            ResultShaper(
                config,
                f"ch_{i}" if config.enable_channel_identification else None,
                self.admission.vocabulary_filter,
            )
            for i in range(channels)
        ]
        providers = self.admission.providers
        self._engines_left = channels
        chain = FrameSignatureChain(self.admission.signing) if self.admission.signing else None
        sender = asyncio.create_task(self._send_loop())
        workers = [
            asyncio.create_task(self._engine_loop(provider, queue, shaper, telemetry))
            for provider, queue, shaper in zip(providers, queues, shapers, strict=True)
        ]
        workers.append(asyncio.create_task(self._receive_loop(config, queues, chain, telemetry)))
        workers.append(asyncio.create_task(self._timers(self.admission.faults)))
        workers.append(asyncio.create_task(self._watch_idle(self.settings.idle_timeout)))
        try:
            await self._finished.wait()
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await self._close(sender)

    async def _close(self, sender: asyncio.Task[None]) -> None:
        if self._dropped or self._client_gone or self._black_holed:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            if self._black_holed:
                self.connection.transport.abort()
            return
        if self._failure is not None:
            self.outcome = str(self._failure)
            await self._outbox.put_last(exception_event(self._failure.name, self._failure.message))
        await self._outbox.put_last(None)
        try:
            await asyncio.wait_for(sender, self.settings.close_timeout)
            await self.connection.close()
        except (TimeoutError, ConnectionClosed):
            self._stalled = True
            self.outcome += " (client stopped reading)"
            self.connection.transport.abort()

    # --- tasks ---------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            frame, ready_at = await self._outbox.get()
            if frame is None or self._black_holed:
                return
            delay = ready_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await self.connection.send(frame)
            except ConnectionClosed:
                self._client_left("client closed before the last results")
                return

    async def _engine_loop(
        self,
        provider: STTProvider,
        queue: asyncio.Queue[bytes | None],
        shaper: ResultShaper,
        telemetry: StreamTelemetry,
    ) -> None:
        loop = asyncio.get_running_loop()
        delay = self.admission.faults.result_delay

        async def audio() -> AsyncIterator[bytes]:
            while (chunk := await queue.get()) is not None:
                yield chunk

        partials = self.settings.partials
        try:
            async for result in provider.stream(audio()):
                if result.is_partial and not partials:
                    continue  # a quiet service: only the end of each utterance is answered
                shaped = shaper.shape(result)
                frame = transcript_event(transcript_event_payload([shaped]))
                await self._outbox.put(frame, loop.time() + delay)
                telemetry.result(shaped)
                self.stats.results += 1
                self.stats.finals += shaped.is_final
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("engine failed on stream %s", self.session_id)
            self.terminate(StreamException.named("InternalFailureException"))
            return
        finally:
            await provider.aclose()
        self._engines_left -= 1
        if self._engines_left == 0:
            self._finished.set()

    async def _receive_loop(
        self,
        config: TranscribeConfig,
        queues: list[asyncio.Queue[bytes | None]],
        chain: FrameSignatureChain | None,
        telemetry: StreamTelemetry,
    ) -> None:
        try:
            await self._receive(config, queues, chain, telemetry)
        except StreamException as exc:
            self.terminate(exc)
        except ConnectionClosed:
            self._client_left("client closed without end of stream")
        except Exception:  # a bug (in decoding, say) must end the stream, not leave it waiting for hours
            log.exception("receiving failed on stream %s", self.session_id)
            self.terminate(StreamException.named("InternalFailureException"))

    async def _receive(
        self,
        config: TranscribeConfig,
        queues: list[asyncio.Queue[bytes | None]],
        chain: FrameSignatureChain | None,
        telemetry: StreamTelemetry,
    ) -> None:
        settings = self.settings
        audio_received = telemetry.audio_sent
        frame_bytes = PCM_SAMPLE_WIDTH * config.channels
        bytes_per_second = config.sample_rate * frame_bytes
        max_chunk = max(32 * 1024, int(bytes_per_second * settings.max_chunk_seconds))
        decoder = media_decoder(config)
        loop = asyncio.get_running_loop()
        while True:
            self._reading_since = loop.time()  # the idle timeout runs (see _watch_idle)
            data = await self.connection.recv()
            self._reading_since = None
            if isinstance(data, str):
                raise bad_request(UNEXPECTED_FRAME)
            self.stats.frames += 1
            chunk = b"" if not data else self._audio_of(data, chain)
            if len(chunk) > max_chunk:
                raise bad_request(
                    f"{STREAM_TOO_BIG}: an audio chunk of {len(chunk)} bytes holds more than "
                    f"{settings.max_chunk_seconds:g} s of audio ({max_chunk} bytes at {config.sample_rate} Hz, "
                    f"{config.channels} channel(s)). Send chunks of 50-200 ms."
                )
            pcm = chunk if decoder is None else decoded(decoder, chunk)
            if pcm:
                self.stats.audio_bytes += len(pcm)
                audio_received(len(pcm) / bytes_per_second)
                self._check_flood(bytes_per_second)
                await self._dispatch(pcm, frame_bytes, queues)
            if not chunk:
                for queue in queues:
                    await queue.put(None)
                return

    async def _dispatch(
        self, chunk: bytes, frame_bytes: int, queues: list[asyncio.Queue[bytes | None]]
    ) -> None:
        """Whole PCM frames to each channel's engine (a frame cut by the chunk waits for the next)."""
        pcm = self._remainder + chunk
        usable = len(pcm) - len(pcm) % frame_bytes
        self._remainder = pcm[usable:]
        if not usable:
            return
        if len(queues) == 1:
            await queues[0].put(pcm[:usable])
        else:
            samples = np.frombuffer(pcm[:usable], dtype="<i2").reshape(-1, len(queues))
            for index, queue in enumerate(queues):
                await queue.put(samples[:, index].tobytes())

    def _audio_of(self, data: bytes, chain: FrameSignatureChain | None) -> bytes:
        try:
            frame = classify(decode_message(data))
        except EventStreamError as exc:
            raise bad_request(f"Malformed event stream message: {exc.message}") from None
        except ProtocolError as exc:
            raise bad_request(f"Malformed event stream message: {exc.message}") from None
        if not isinstance(frame, AudioChunk):
            raise bad_request(
                f"Unexpected event received: {type(frame).__name__}; a client sends only AudioEvent messages."
            )
        envelope = frame.envelope
        if envelope is not None and chain is not None:
            date = envelope.date
            if isinstance(date, int):
                date = datetime.fromtimestamp(date / 1000, UTC)
            if date is None:
                raise bad_request("A signed frame needs a :date header.")
            try:
                chain.verify(date, envelope.signature, envelope.inner)
            except AuthFailure as exc:
                raise StreamException(exc.exception_name, exc.message) from None
        return frame.payload

    def _check_flood(self, bytes_per_second: int) -> None:
        limit = self.settings.max_ahead_seconds
        if limit is None:
            return
        elapsed = time.monotonic() - self.stats.started
        ahead = self.stats.audio_bytes / bytes_per_second - elapsed
        if ahead > limit:
            raise bad_request(
                f"{STREAM_TOO_BIG}: audio arrived {ahead:.0f} s ahead of real time (the limit is {limit:g} s). "
                "Send audio at the pace it is recorded."
            )
        if self.stats.frames > limit * BURST_FRAMES_PER_AHEAD_SECOND + elapsed * FRAMES_PER_SECOND:
            raise bad_request(
                f"{STREAM_TOO_BIG}: {self.stats.frames} frames in {elapsed:.1f} s. Send chunks of 50-200 ms."
            )

    async def _watch_idle(self, idle_seconds: float) -> None:
        """No frame for ``idle_seconds`` while the receiver waits for one: the service's idle timeout.

        One timer per stream that looks at the receiver's state when it fires, rather than a timer
        armed and cancelled around every frame: while audio flows it wakes once per ``idle_seconds``.
        Time spent waiting for a full engine queue (the server's own backpressure) never counts.
        """
        loop = asyncio.get_running_loop()
        while True:
            since, now = self._reading_since, loop.time()
            if since is None or self._black_holed:  # a black hole does not hang up: the client must notice
                await asyncio.sleep(idle_seconds)
            elif now - since < idle_seconds:
                await asyncio.sleep(since + idle_seconds - now)
            else:
                self.terminate(bad_request(idle_timeout_message(idle_seconds)))
                return

    async def _timers(self, faults: StreamFaults) -> None:
        events: list[tuple[float, str]] = [(self.settings.max_stream_seconds, "limit")]
        if faults.drop_after is not None:
            events.append((faults.drop_after, "drop"))
        if faults.stall_after is not None:
            events.append((faults.stall_after, "stall"))
        if faults.exception is not None:
            events.append((faults.exception_after or 0.0, "exception"))
        for at, kind in sorted(events):
            await asyncio.sleep(max(0.0, at - (time.monotonic() - self.stats.started)))
            if kind == "limit":
                self.terminate(stream_too_long(self.settings.max_stream_seconds))
            elif kind == "exception" and faults.exception is not None:
                self.terminate(faults.exception)
            elif kind == "stall":
                # A black hole: nothing more is read (so pings go unanswered) or sent; the client must
                # find out from its keepalive. The stream ends at the idle timeout or shutdown.
                self._black_holed = True
                self.outcome = f"fault: stopped answering after {faults.stall_after:g} s"
                self.connection.transport.pause_reading()
            elif kind == "drop":
                self._dropped = True
                self.outcome = f"fault: connection dropped after {faults.drop_after:g} s"
                self.connection.transport.abort()
                self._finished.set()
            return

    # --- telemetry ----------------------------------------------------------------------------

    def _open_telemetry(self) -> StreamTelemetry:
        config, admission = self.admission.config, self.admission
        region = config.region if config else admission.signing.region if admission.signing else None
        return StreamTelemetry(
            admission.providers[0].name if admission.providers else self.engine_name,
            region,
            config.language_code if config else None,
            component="server",
            telemetry=self._hub,
        )

    def _close_telemetry(self) -> None:
        telemetry = self.telemetry
        if telemetry is None:
            return
        error = self.typed_error()
        if error is not None:
            telemetry.error(error)
            telemetry.close("error")
        else:
            telemetry.close("cancelled" if self._client_gone else "ok")

    def typed_error(self) -> BelugaError | None:
        """How the stream failed, as the typed error a client meets (so ``error.type`` matches)."""
        if self._failure is not None:
            return error_for_exception(self._failure.name, self._failure.message)
        if self._dropped or self._black_holed:
            return StreamConnectionError(self.outcome)
        if self._stalled:
            return StreamTimeoutError("the client stopped reading results")
        return None

    # --- the log line --------------------------------------------------------------------------

    def write_log_line(self) -> None:
        config = self.admission.config
        params = config.describe() if config is not None else "-"
        seconds = 0.0
        if config is not None:
            seconds = self.stats.audio_bytes / (config.sample_rate * PCM_SAMPLE_WIDTH * config.channels)
        faults = self.admission.faults.describe()
        wall = time.monotonic() - self.stats.started
        error = self.typed_error()
        # The same facts as fields, for JSON logs (``beluga serve --log-json``).
        fields = {
            "session_id": self.session_id,
            "request_id": self.admission.request_id,
            "peer": self.admission.peer,
            "access_key": self.admission.access_key,
            "params": params,
            "audio_seconds": round(seconds, 3),
            "frames": self.stats.frames,
            "results": self.stats.results,
            "finals": self.stats.finals,
            "wall_seconds": round(wall, 3),
            "faults": faults,
            "outcome": self.outcome,
            "error_type": error.code if error is not None else None,
        }
        log.info(
            "stream session=%s request=%s peer=%s key=%s params=[%s] audio=%.2fs frames=%d results=%d "
            "finals=%d wall=%.2fs faults=%s outcome=%s",
            self.session_id,
            self.admission.request_id,
            self.admission.peer,
            self.admission.access_key or "-",
            params,
            seconds,
            self.stats.frames,
            self.stats.results,
            self.stats.finals,
            wall,
            faults,
            self.outcome,
            extra=fields,
        )


def media_decoder(config: TranscribeConfig) -> CompressedDecoder | None:
    """The stream's decoder to PCM at its declared rate (``None`` for pcm, which needs none)."""
    if config.media_encoding == "pcm":
        return None
    return CompressedDecoder(config.media_encoding, config.sample_rate, config.channels)


def decoded(decoder: CompressedDecoder, chunk: bytes) -> bytes:
    """s16le PCM of what ``chunk`` completed (the rest at the end of stream, ``chunk == b""``).

    A stream the codec cannot read ends as the service ends it: a BadRequestException saying why.
    """
    try:
        samples = decoder.feed(chunk) if chunk else decoder.finish()
    except AudioFormatError as exc:
        raise bad_request(exc.message) from None
    return float_to_pcm16(samples) if len(samples) else b""


def new_request_id() -> str:
    return str(uuid.uuid4())
