"""One media timeline across the connections (or providers) of one logical stream.

A stream may outlive its connection: a dropped socket, a service fault or a switch to another
provider starts a new one. The application must still see one stream: times that continue, no word
lost, none repeated. :class:`StreamTimeline` is that promise, sans-I/O (bytes and results in, bytes
and results out), shared by the AWS client and the provider-agnostic fallback:

* a bounded **replay buffer** of audio not yet covered by final results (plus ``overlap_seconds``
  already covered, as context), sent first on the next connection;
* a **connection clock** per connection: its results are moved to where its first replayed sample
  lies on the stream, and keep-alive silence (sent only to hold the connection open, not the
  application's audio) is taken out again, so times are on the application's audio timeline;
* a **duplicate filter**: on a new connection, words of replayed audio that were already delivered
  as final (their midpoint before the end of the last final, or the same word overlapping a
  delivered one) are dropped; a final that had only those is dropped whole, one that straddles the
  cut keeps its new words;
* **retraction** of a failed connection's unfinished partials (an empty partial with the same
  ``result_id``): their words come again, from the replay, under new ids;
* a :class:`~beluga_voice.stt.speakers.SpeakerMap` per connection so speaker labels stay the same.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from beluga_voice.errors import ConfigurationError
from beluga_voice.stt.model import Alternative, Entity, TranscriptResult, Word, join_words
from beluga_voice.stt.speakers import SpeakerMap

DEFAULT_REPLAY_SECONDS = 30.0
TIMELINE_TOLERANCE = 0.005
"""A final ending this close to (or before) the last delivered final is the same speech again."""
REPEAT_OVERLAP = 0.02
"""A replayed word overlapping a delivered word of the same text by more than this is that word."""
TAIL_SECONDS = 10.0
"""Delivered final words kept (beyond the overlap) for duplicate checks and speaker votes."""
TAIL_WORDS = 512

_NOT_WORD = re.compile(r"[^\w']+")


@dataclass
class TimelineStats:
    """Counters of the whole stream, across connections."""

    audio_seconds: float = 0.0
    connections: int = 0
    replayed_seconds: float = 0.0
    lost_seconds: float = 0.0
    """Audio that left the full replay buffer before a final covered it and was needed by a later
    connection: a gap in the transcript (zero unless an outage outlasts ``replay_seconds``)."""
    duplicate_finals_dropped: int = 0
    duplicate_words_dropped: int = 0
    retracted_partials: int = 0


@dataclass
class _Buffered:
    start_byte: int
    chunk: bytes


@dataclass
class ConnectionClock:
    """Connection time -> stream time for one connection.

    The connection's audio starts at ``origin`` on the stream; ``gaps`` are (connection time,
    seconds) of keep-alive silence it carried, which is not on the stream's timeline.
    """

    origin: float = 0.0
    gaps: list[tuple[float, float]] = field(default_factory=list)
    inserted: float = 0.0

    def insert(self, at: float, seconds: float) -> None:
        self.gaps.append((at, seconds))
        self.inserted += seconds

    def to_stream(self, t: float) -> float:
        removed = 0.0
        for at, seconds in self.gaps:
            if t <= at:
                break
            if t < at + seconds:  # inside the silence: the point where it was inserted
                return self.origin + at - removed
            removed += seconds
        return self.origin + t - removed


class StreamTimeline:
    """Media timeline, replay buffer, duplicate filter, retractions and speaker map of one stream.

    Media time is counted in bytes of audio accepted (``bytes_per_second`` converts); ``None``
    (compressed audio) disables replay and time shifts.
    """

    def __init__(
        self,
        bytes_per_second: int | None,
        replay_seconds: float = DEFAULT_REPLAY_SECONDS,
        overlap_seconds: float = 0.0,
    ) -> None:
        if replay_seconds < 0:
            raise ConfigurationError(f"replay_seconds must not be negative, got {replay_seconds}")
        if overlap_seconds < 0 or (overlap_seconds and overlap_seconds >= replay_seconds):
            raise ConfigurationError(
                f"overlap_seconds must be at least 0 and below replay_seconds ({replay_seconds:g}), "
                f"got {overlap_seconds}"
            )
        self.bytes_per_second = bytes_per_second
        self.replay_limit = int(replay_seconds * bytes_per_second) if bytes_per_second else 0
        self.overlap_seconds = overlap_seconds
        self._overlap_bytes = int(overlap_seconds * bytes_per_second) if bytes_per_second else 0
        self.stats = TimelineStats()
        self.clock = ConnectionClock()
        self._head = 0  # bytes accepted so far
        self._origin_byte = 0  # where the current connection's audio starts
        self._lost_until = 0
        self._buffer: deque[_Buffered] = deque()
        self._buffered_bytes = 0
        self._final_until: dict[str | None, float] = {}  # per channel: end of the last final delivered
        self._replayed_until: dict[str | None, float] = {}  # the same, when the current connection began
        self._tail: dict[str | None, deque[Word]] = {}  # per channel: recently delivered final words
        self._open: dict[str, TranscriptResult] = {}  # partials of this connection without their final
        self._speakers = SpeakerMap(identity=True)
        self.connection_finals = 0
        """Finals the current connection delivered (replayed ones it only repeated not counted)."""

    # --- audio ---------------------------------------------------------------------------------

    @property
    def media_time(self) -> float:
        """Seconds of application audio accepted so far (the head of the timeline)."""
        return self._seconds(self._head)

    @property
    def buffered_seconds(self) -> float:
        return self._seconds(self._buffered_bytes)

    @property
    def buffer_full(self) -> bool:
        return bool(self.replay_limit) and self._buffered_bytes >= self.replay_limit

    def record(self, chunk: bytes) -> None:
        """Application audio accepted: it advances the timeline and waits in the replay buffer."""
        if self.replay_limit:
            self._buffer.append(_Buffered(self._head, chunk))
            self._buffered_bytes += len(chunk)
            while self._buffered_bytes > self.replay_limit and len(self._buffer) > 1:
                self._buffered_bytes -= len(self._buffer.popleft().chunk)
        self._head += len(chunk)
        self.stats.audio_seconds = self.media_time

    def insert_silence(self, seconds: float) -> None:
        """Keep-alive silence went out on the current connection (not part of the stream's audio)."""
        at = self._seconds(self._head - self._origin_byte) + self.clock.inserted
        self.clock.insert(at, seconds)

    # --- connections ---------------------------------------------------------------------------

    def begin_connection(self) -> list[bytes]:
        """Start a connection: the chunks to send on it first (audio not yet covered by finals)."""
        self.stats.connections += 1
        reconnect = self.stats.connections > 1
        # Only audio sent again can produce results already delivered; the first connection's
        # results pass untouched (the service's own segments may legitimately touch or overlap).
        self._replayed_until = dict(self._final_until) if reconnect else {}
        self._origin_byte = self._buffer[0].start_byte if self._buffer else self._head
        if self.bytes_per_second:
            covered = int(min(self._final_until.values()) * self.bytes_per_second) if self._final_until else 0
            gap_from = max(covered, self._lost_until)
            if self._origin_byte > gap_from:
                self.stats.lost_seconds += self._seconds(self._origin_byte - gap_from)
            self._lost_until = max(self._lost_until, self._origin_byte)
        self.clock = ConnectionClock(self._seconds(self._origin_byte))
        self._speakers = SpeakerMap(identity=not reconnect)
        self.connection_finals = 0
        replay = [b.chunk for b in self._buffer]
        if reconnect:
            self.stats.replayed_seconds += self._seconds(sum(len(c) for c in replay))
        return replay

    def abandon_connection(self) -> list[TranscriptResult]:
        """The connection failed: withdraw its unfinished partials (empty, same ``result_id``)."""
        retractions = [
            TranscriptResult(rid, True, partial.start, partial.start, "", channel=partial.channel)
            for rid, partial in self._open.items()
        ]
        self._open.clear()
        self.stats.retracted_partials += len(retractions)
        return retractions

    # --- results -------------------------------------------------------------------------------

    def place(self, results: Iterable[TranscriptResult]) -> list[TranscriptResult]:
        """Connection results on the stream timeline, minus what was already delivered as final."""
        placed: list[TranscriptResult] = []
        for result in results:
            result = self._to_stream(result)
            self._vote_speakers(result)
            kept = self._deduplicate(result)
            if kept is None:
                continue
            if not self._speakers.identity:
                kept = self._relabel(kept)
            self._track(kept)
            placed.append(kept)
        return placed

    def _to_stream(self, result: TranscriptResult) -> TranscriptResult:
        clock = self.clock
        if not clock.gaps:
            return result.shifted(clock.origin) if clock.origin else result
        return retimed(result, clock.to_stream)

    def _vote_speakers(self, result: TranscriptResult) -> None:
        covered = self._replayed_until.get(result.channel)
        tail = self._tail.get(result.channel)
        if self._speakers.identity or covered is None or not tail:
            return
        for word in result.words:
            if word.speaker is None or word.is_punctuation or _middle(word) >= covered:
                continue
            for delivered in tail:
                overlap = min(word.end, delivered.end) - max(word.start, delivered.start)
                if delivered.speaker is not None and overlap > 0:
                    self._speakers.observe(word.speaker, delivered.speaker, overlap)

    def _relabel(self, result: TranscriptResult) -> TranscriptResult:
        if not any(w.speaker is not None for w in result.words):
            return result
        words = tuple(
            w if w.speaker is None else replace(w, speaker=self._speakers.resolve(w.speaker))
            for w in result.words
        )
        return replace(result, words=words)

    def _deduplicate(self, result: TranscriptResult) -> TranscriptResult | None:
        covered = self._replayed_until.get(result.channel)
        if covered is None or result.start >= covered - TIMELINE_TOLERANCE:
            return result
        if not result.words:
            if result.end <= covered + TIMELINE_TOLERANCE:
                self._count_dropped(result, 0)
                return None
            return replace(result, start=covered)
        tail = self._tail.get(result.channel, ())
        kept = [w for w in result.words if _middle(w) >= covered and not _repeats(w, tail)]
        while kept and kept[0].is_punctuation:  # it ended the sentence that was already delivered
            kept.pop(0)
        if not kept:
            self._count_dropped(result, len(result.words))
            return None
        if len(kept) < len(result.words) and not result.is_partial:
            self.stats.duplicate_words_dropped += len(result.words) - len(kept)
        if kept[0].start < covered:  # the word was cut by the failure; it starts where delivery ended
            kept[0] = replace(kept[0], start=covered)
        return replace(result, start=kept[0].start, words=tuple(kept), text=join_words(kept))

    def _count_dropped(self, result: TranscriptResult, words: int) -> None:
        if not result.is_partial:
            self.stats.duplicate_finals_dropped += 1
            self.stats.duplicate_words_dropped += words

    def _track(self, result: TranscriptResult) -> None:
        if result.is_partial:
            self._open[result.result_id] = result
            return
        self._open.pop(result.result_id, None)
        self.connection_finals += 1
        channel = result.channel
        until = max(self._final_until.get(channel, 0.0), result.end)
        self._final_until[channel] = until
        tail = self._tail.setdefault(channel, deque(maxlen=TAIL_WORDS))
        tail.extend(w for w in result.words if not w.is_punctuation)
        horizon = until - self.overlap_seconds - TAIL_SECONDS
        while tail and tail[0].end < horizon:
            tail.popleft()
        self._trim()

    def _trim(self) -> None:
        if not self._final_until or not self.bytes_per_second:
            return
        keep_from = int(min(self._final_until.values()) * self.bytes_per_second) - self._overlap_bytes
        while self._buffer and self._buffer[0].start_byte + len(self._buffer[0].chunk) <= keep_from:
            self._buffered_bytes -= len(self._buffer.popleft().chunk)

    def _seconds(self, nbytes: int) -> float:
        return nbytes / self.bytes_per_second if self.bytes_per_second else 0.0


def normalized_text(text: str) -> str:
    """A word's identity for duplicate checks: lower case, without punctuation."""
    return _NOT_WORD.sub("", text.lower())


def _middle(word: Word) -> float:
    return (word.start + word.end) / 2


def _repeats(word: Word, tail: Iterable[Word]) -> bool:
    if word.is_punctuation:
        return False
    text = normalized_text(word.text)
    return any(
        word.start < d.end - REPEAT_OVERLAP and d.start < word.end and normalized_text(d.text) == text
        for d in tail
    )


def retimed(result: TranscriptResult, to_stream: Callable[[float], float]) -> TranscriptResult:
    """``result`` with every time passed through ``to_stream`` (words, entities, alternatives)."""

    def word(w: Word) -> Word:
        return replace(w, start=to_stream(w.start), end=to_stream(w.end))

    def entity(e: Entity) -> Entity:
        return replace(e, start=to_stream(e.start), end=to_stream(e.end))

    def alternative(a: Alternative) -> Alternative:
        return replace(a, words=tuple(map(word, a.words)), entities=tuple(map(entity, a.entities)))

    return replace(
        result,
        start=to_stream(result.start),
        end=to_stream(result.end),
        words=tuple(map(word, result.words)),
        entities=tuple(map(entity, result.entities)),
        alternatives=tuple(map(alternative, result.alternatives)),
    )
