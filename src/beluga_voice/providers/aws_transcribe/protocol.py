"""The client side of a Transcribe stream as a sans-I/O state machine.

Two layers, both free of sockets and clocks so they are tested byte for byte:

* :class:`ConnectionProtocol` - one WebSocket connection: audio in, frames out; frames in, results
  (on that connection's own timeline) or a typed error out; what a close means.
* :class:`~beluga_voice.stt.timeline.StreamTimeline` - one logical stream across connections (shared
  with the provider fallback): the media timeline, the bounded buffer of audio not yet covered by
  final results (replayed on a new connection), the duplicate filter, retractions, speaker labels.

:class:`TranscribeStream` ties them together for the asyncio adapter in ``client.py``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from beluga_voice.audio.pcm import PCM_SAMPLE_WIDTH
from beluga_voice.errors import BelugaError, ProtocolError, StreamConnectionError
from beluga_voice.providers.aws_transcribe.eventstream import EventStreamDecoder
from beluga_voice.providers.aws_transcribe.media_replay import MediaReplay
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
from beluga_voice.stt.model import TranscriptResult
from beluga_voice.stt.timeline import DEFAULT_REPLAY_SECONDS, ConnectionClock, StreamTimeline, TimelineStats

__all__ = [
    "DEFAULT_REPLAY_SECONDS",
    "MAX_INCOMING_MESSAGE",
    "ConnectionProtocol",
    "ConnectionState",
    "ConnectionStats",
    "StreamTimeline",
    "TimelineStats",
    "TranscribeStream",
]

MAX_INCOMING_MESSAGE = 1024 * 1024


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
    transcript_events: int = 0
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
                self.stats.transcript_events += 1
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
class TranscribeStream:
    """A whole stream: the timeline plus the current connection's protocol.

    ``frame_bytes`` is the size of one PCM frame (all channels); audio is sent only in whole frames.
    ``frame_bytes=None`` (compressed encodings) leaves the timeline without byte times: with a
    ``media`` replay buffer (:meth:`for_media`), FLAC frames and Ogg pages give the times instead.
    ``overlap_seconds`` of audio already covered by finals are replayed too, as context for the new
    connection (and evidence for speaker labels); ``voice_seconds`` of each known speaker are
    replayed before that, so a new connection's diarization meets every speaker.
    """

    frame_bytes: int | None
    bytes_per_second: int | None
    replay_seconds: float = DEFAULT_REPLAY_SECONDS
    overlap_seconds: float = 0.0
    voice_seconds: float = 0.0
    timeline: StreamTimeline = field(init=False)
    connection: ConnectionProtocol | None = field(init=False, default=None)
    media: MediaReplay | None = None
    replayed: list[bytes] = field(init=False, default_factory=list)
    """The audio chunks the current connection began with."""
    replayed_seconds: float = field(init=False, default=0.0)
    """Seconds of audio in ``replayed`` (speaker samples included), billed again by the service."""

    def __post_init__(self) -> None:
        self.timeline = StreamTimeline(
            self.bytes_per_second,
            self.replay_seconds,
            self.overlap_seconds,
            self.voice_seconds,
            self.frame_bytes or 2,
        )

    @classmethod
    def for_pcm(
        cls,
        sample_rate: int,
        channels: int = 1,
        replay_seconds: float = DEFAULT_REPLAY_SECONDS,
        overlap_seconds: float = 0.0,
        voice_seconds: float = 0.0,
    ) -> TranscribeStream:
        frame = PCM_SAMPLE_WIDTH * channels
        return cls(frame, sample_rate * frame, replay_seconds, overlap_seconds, voice_seconds)

    @classmethod
    def for_media(
        cls, encoding: str, replay_seconds: float = DEFAULT_REPLAY_SECONDS, overlap_seconds: float = 0.0
    ) -> TranscribeStream:
        """A ``flac`` or ``ogg-opus`` stream; ``replay_seconds=0``: no replay (and no reconnection)."""
        media = MediaReplay(encoding, replay_seconds, overlap_seconds) if replay_seconds else None
        return cls(None, None, replay_seconds, overlap_seconds, media=media)

    def connect(self) -> list[bytes]:
        """A new connection begins: the frames to send on it first (replayed audio)."""
        self.connection = ConnectionProtocol()
        self.replayed = self.timeline.begin_connection()
        if self.media is not None:
            replay = self.media.begin(reconnect=self.timeline.stats.connections > 1)
            self.timeline.clock = ConnectionClock(replay.origin)
            self.timeline.stats.replayed_seconds += replay.seconds
            self.timeline.stats.lost_seconds = self.media.lost_seconds
            self.replayed, self.replayed_seconds = replay.chunks, replay.seconds
        elif self.bytes_per_second:
            self.replayed_seconds = sum(map(len, self.replayed)) / self.bytes_per_second
        return [self.connection.audio_frame(chunk) for chunk in self.replayed]

    def audio(self, chunk: bytes, *, send: bool = True, piece: int = 0) -> bytes | None:
        """Accept one chunk of application audio; the frame to send it (``None``: nothing to send).

        ``send=False`` (no usable connection) only records it: the next connection replays it.
        ``piece``: a burst of chunks joined into one frame is kept for replay as chunks of that many
        bytes, so a replay still starts at the chunk holding the end of the last final.
        """
        if self.frame_bytes and len(chunk) % self.frame_bytes:
            chunk = chunk[: len(chunk) - len(chunk) % self.frame_bytes]
        if not chunk:
            return None
        if self.media is not None:
            self.media.record(chunk)
            self.timeline.stats.audio_seconds = self.media.media_time
        elif piece and len(chunk) > piece:
            for start in range(0, len(chunk), piece):
                self.timeline.record(chunk[start : start + piece])
        else:
            self.timeline.record(chunk)
        return self._current().audio_frame(chunk) if send else None

    def keepalive(self, silence: bytes) -> bytes:
        """The frame for keep-alive silence, kept off the stream's timeline."""
        frame = self._current().audio_frame(silence)
        if self.bytes_per_second:
            self.timeline.insert_silence(len(silence) / self.bytes_per_second)
        return frame

    def end(self) -> bytes:
        """The end-of-stream frame (the audio source is exhausted, or the stream pauses)."""
        if self.media is not None:  # compressed streams never pause: this is the end of the audio
            self.media.finish()
            self.timeline.stats.audio_seconds = self.media.media_time
        return self._current().end_frame()

    def receive(self, data: bytes | str) -> list[TranscriptResult]:
        placed = self.timeline.place(self._current().receive(data))
        if self.media is not None:
            self.media.answered(placed)
        return placed

    def closed(self, code: int | None, reason: str = "") -> BelugaError | None:
        return self._current().closed(code, reason)

    def abandon(self) -> list[TranscriptResult]:
        """The current connection is given up: retractions of its unfinished partials."""
        return self.timeline.abandon_connection()

    @property
    def streaming(self) -> bool:
        """The current connection takes audio (not ending, finished or failed)."""
        return self.connection is not None and self.connection.state is ConnectionState.STREAMING

    @property
    def finished(self) -> bool:
        return self.connection is not None and self.connection.state is ConnectionState.FINISHED

    def _current(self) -> ConnectionProtocol:
        if self.connection is None:
            raise ProtocolError("no connection: call connect() first")
        return self.connection
