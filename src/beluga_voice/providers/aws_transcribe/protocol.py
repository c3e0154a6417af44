"""The client side of a Transcribe stream as a sans-I/O state machine.

Two layers, both free of sockets and clocks so they are tested byte for byte:

* :class:`ConnectionProtocol` - one WebSocket connection: audio in, frames out; frames in, results
  (on that connection's own timeline) or a typed error out; what a close means.
* :class:`StreamTimeline` - one logical stream across connections: the media timeline, the bounded
  buffer of audio not yet covered by final results (replayed on a new connection), and the filter
  that keeps finals from being delivered twice. With one connection it is a pass-through; it is
  what reconnection builds on.

:class:`TranscribeStream` ties them together for the asyncio adapter in ``client.py``.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from beluga_voice.audio.pcm import PCM_SAMPLE_WIDTH
from beluga_voice.errors import BelugaError, ProtocolError, StreamConnectionError
from beluga_voice.providers.aws_transcribe.eventstream import EventStreamDecoder
from beluga_voice.providers.aws_transcribe.messages import (
    AudioChunk,
    ExceptionFrame,
    OtherEvent,
    TranscriptPayload,
    audio_event,
    classify,
    end_of_stream,
)
from beluga_voice.providers.aws_transcribe.transcript_json import parse_transcript_event
from beluga_voice.stt.model import TranscriptResult, join_words

DEFAULT_REPLAY_SECONDS = 30.0
MAX_INCOMING_MESSAGE = 1024 * 1024
# A final that ends this close to (or before) the last delivered final is the same speech again.
TIMELINE_TOLERANCE = 0.005


class ConnectionState(enum.Enum):
    STREAMING = "streaming"
    ENDING = "ending"  # empty AudioEvent sent, draining results
    FINISHED = "finished"  # the service closed after the end of stream
    FAILED = "failed"


@dataclass
class ConnectionStats:
    """What one connection carried (audio seconds are what the service bills)."""

    audio_bytes: int = 0
    frames_sent: int = 0
    messages_received: int = 0
    results: int = 0
    finals: int = 0


class ConnectionProtocol:
    """One connection's protocol logic; the adapter moves the bytes.

    Service messages arrive one per WebSocket binary frame, but the decoder is incremental, so any
    split or concatenation of frames is handled too.
    """

    def __init__(self) -> None:
        self.state = ConnectionState.STREAMING
        self.stats = ConnectionStats()
        self.error: BelugaError | None = None
        self._decoder = EventStreamDecoder(max_message_length=MAX_INCOMING_MESSAGE)

    def audio_frame(self, payload: bytes) -> bytes:
        """The frame for one audio chunk (an empty chunk would end the stream, so it is refused)."""
        if self.state is not ConnectionState.STREAMING:
            raise ProtocolError(f"cannot send audio on a connection that is {self.state.value}")
        if not payload:
            raise ProtocolError("an empty audio chunk would end the stream; use end_frame()")
        self.stats.audio_bytes += len(payload)
        self.stats.frames_sent += 1
        return audio_event(payload)

    def end_frame(self) -> bytes:
        """The empty AudioEvent; afterwards the service sends its last results and closes."""
        if self.state is not ConnectionState.STREAMING:
            raise ProtocolError(f"cannot end a connection that is {self.state.value}")
        self.state = ConnectionState.ENDING
        self.stats.frames_sent += 1
        return end_of_stream()

    def receive(self, data: bytes | str) -> list[TranscriptResult]:
        """Results in one frame from the service; raises the typed error of an exception frame."""
        if isinstance(data, str):
            return self._fail(ProtocolError("the service sent a text frame; the protocol uses binary frames"))
        try:
            messages = self._decoder.feed(data)
        except ProtocolError as exc:
            return self._fail(exc)
        results: list[TranscriptResult] = []
        for message in messages:
            self.stats.messages_received += 1
            frame = classify(message)
            if isinstance(frame, TranscriptPayload):
                results += parse_transcript_event(frame.payload)
            elif isinstance(frame, ExceptionFrame):
                return self._fail(frame.to_error())
            elif isinstance(frame, AudioChunk):
                return self._fail(ProtocolError("the service sent an AudioEvent; is the endpoint a client?"))
            elif isinstance(frame, OtherEvent):
                continue  # event types added by newer service versions
        self.stats.results += len(results)
        self.stats.finals += sum(1 for r in results if not r.is_partial)
        return results

    def closed(self, code: int | None, reason: str = "") -> BelugaError | None:
        """What the connection's close means: ``None`` when the stream finished as it should."""
        if self.state is ConnectionState.FAILED:
            return self.error
        if self.state is ConnectionState.ENDING and code in (1000, 1001) and not self._decoder.pending:
            self.state = ConnectionState.FINISHED
            return None
        detail = (
            f"close code {code}" + (f" ({reason})" if reason else "") if code else "the connection dropped"
        )
        if self.state is ConnectionState.ENDING:
            message = f"the stream ended abnormally after the end of audio: {detail}"
        else:
            message = f"the service closed the stream before the end of the audio: {detail}"
        self.state = ConnectionState.FAILED
        self.error = StreamConnectionError(message)
        return self.error

    def _fail(self, error: BelugaError) -> list[TranscriptResult]:
        self.state = ConnectionState.FAILED
        self.error = error
        raise error


@dataclass
class _Buffered:
    start_byte: int
    chunk: bytes


@dataclass
class TimelineStats:
    """Counters of the whole stream (across connections)."""

    audio_seconds: float = 0.0
    connections: int = 0
    replayed_seconds: float = 0.0
    duplicate_finals_dropped: int = 0


class StreamTimeline:
    """One media timeline across connections, the replay buffer, and the duplicate-final filter.

    Media time is counted in bytes of audio accepted (``bytes_per_second`` converts); a connection
    that starts by replaying buffered audio from byte ``b`` has its results shifted by ``b``'s time.
    """

    def __init__(self, bytes_per_second: int | None, replay_seconds: float = DEFAULT_REPLAY_SECONDS) -> None:
        self.bytes_per_second = bytes_per_second
        self.replay_limit = int(replay_seconds * bytes_per_second) if bytes_per_second else 0
        self.stats = TimelineStats()
        self._head = 0  # bytes accepted so far
        self._buffer: deque[_Buffered] = deque()
        self._buffered_bytes = 0
        self._offset = 0.0  # media seconds where the current connection's audio starts
        self._final_until: dict[str | None, float] = {}  # per channel: end of the last final delivered
        self._replayed_until: dict[str | None, float] = {}  # the same, when the current connection began

    @property
    def media_time(self) -> float:
        """Seconds of audio accepted so far (the head of the timeline)."""
        return self._seconds(self._head)

    @property
    def buffered_seconds(self) -> float:
        return self._seconds(self._buffered_bytes)

    def begin_connection(self) -> list[bytes]:
        """Start a connection: the chunks to send first (audio not yet covered by finals)."""
        self.stats.connections += 1
        # Only audio sent again can produce results already delivered; the first connection's
        # results pass untouched (the service's own segments may legitimately touch or overlap).
        self._replayed_until = dict(self._final_until) if self.stats.connections > 1 else {}
        if self._buffer:
            self._offset = self._seconds(self._buffer[0].start_byte)
        else:
            self._offset = self._seconds(self._head)
        replay = [b.chunk for b in self._buffer]
        if self.stats.connections > 1:
            self.stats.replayed_seconds += self._seconds(sum(len(c) for c in replay))
        return replay

    def record(self, chunk: bytes) -> None:
        """Audio accepted for sending: it advances the timeline and waits in the replay buffer."""
        if self.replay_limit:
            self._buffer.append(_Buffered(self._head, chunk))
            self._buffered_bytes += len(chunk)
            while self._buffered_bytes > self.replay_limit and len(self._buffer) > 1:
                self._buffered_bytes -= len(self._buffer.popleft().chunk)
        self._head += len(chunk)
        self.stats.audio_seconds = self.media_time

    def place(self, results: Iterable[TranscriptResult]) -> list[TranscriptResult]:
        """Connection results on the stream timeline, minus what was already delivered as final."""
        placed: list[TranscriptResult] = []
        for result in results:
            if self._offset:
                result = result.shifted(self._offset)
            result_or_none = self._deduplicate(result)
            if result_or_none is None:
                continue
            placed.append(result_or_none)
            if not result_or_none.is_partial:
                self._final_until[result.channel] = max(
                    self._final_until.get(result.channel, 0.0), result.end
                )
                self._trim()
        return placed

    def _deduplicate(self, result: TranscriptResult) -> TranscriptResult | None:
        covered = self._replayed_until.get(result.channel)
        if covered is None or result.start >= covered - TIMELINE_TOLERANCE:
            return result
        if result.end <= covered + TIMELINE_TOLERANCE:
            if not result.is_partial:
                self.stats.duplicate_finals_dropped += 1
            return None
        # Straddles the delivered part (speech cut by a reconnect): keep only the new words.
        words = tuple(w for w in result.words if (w.start + w.end) / 2 >= covered)
        if result.words and not words:
            return None
        start = words[0].start if words else covered
        return replace(
            result, start=start, words=words, text=join_words(words) if result.words else result.text
        )

    def _trim(self) -> None:
        if not self._final_until or not self.bytes_per_second:
            return
        covered_byte = int(min(self._final_until.values()) * self.bytes_per_second)
        while self._buffer and self._buffer[0].start_byte + len(self._buffer[0].chunk) <= covered_byte:
            self._buffered_bytes -= len(self._buffer.popleft().chunk)

    def _seconds(self, nbytes: int) -> float:
        return nbytes / self.bytes_per_second if self.bytes_per_second else 0.0


@dataclass
class TranscribeStream:
    """A whole stream: the timeline plus the current connection's protocol.

    ``frame_bytes`` is the size of one PCM frame (all channels); audio is sent only in whole frames.
    ``frame_bytes=None`` (compressed encodings) disables the media timeline and replay.
    """

    frame_bytes: int | None
    bytes_per_second: int | None
    replay_seconds: float = DEFAULT_REPLAY_SECONDS
    timeline: StreamTimeline = field(init=False)
    connection: ConnectionProtocol | None = field(init=False, default=None)
    _ended: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.timeline = StreamTimeline(self.bytes_per_second, self.replay_seconds)

    @classmethod
    def for_pcm(
        cls, sample_rate: int, channels: int = 1, replay_seconds: float = DEFAULT_REPLAY_SECONDS
    ) -> TranscribeStream:
        frame = PCM_SAMPLE_WIDTH * channels
        return cls(frame, sample_rate * frame, replay_seconds)

    def connect(self) -> list[bytes]:
        """A new connection begins: the frames to send on it first (replayed audio)."""
        self.connection = ConnectionProtocol()
        return [self.connection.audio_frame(chunk) for chunk in self.timeline.begin_connection()]

    def audio(self, chunk: bytes) -> bytes | None:
        """The frame for one chunk (``None`` for nothing to send, e.g. a lone partial sample)."""
        if self.frame_bytes and len(chunk) % self.frame_bytes:
            chunk = chunk[: len(chunk) - len(chunk) % self.frame_bytes]
        if not chunk:
            return None
        self.timeline.record(chunk)
        return self._current().audio_frame(chunk)

    def end(self) -> bytes:
        """The end-of-stream frame (the audio source is exhausted)."""
        self._ended = True
        return self._current().end_frame()

    def receive(self, data: bytes | str) -> list[TranscriptResult]:
        return self.timeline.place(self._current().receive(data))

    def closed(self, code: int | None, reason: str = "") -> BelugaError | None:
        return self._current().closed(code, reason)

    @property
    def finished(self) -> bool:
        return self.connection is not None and self.connection.state is ConnectionState.FINISHED

    def _current(self) -> ConnectionProtocol:
        if self.connection is None:
            raise ProtocolError("no connection: call connect() first")
        return self.connection
