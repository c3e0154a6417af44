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
* a :class:`~beluga_voice.stt.speakers.SpeakerMap` per connection so speaker labels stay the same:
  with ``voice_seconds``, a new connection first hears a short sample of every known speaker (the
  longest of their recent runs of words, at most ``voice_seconds``, separated by
  ``VOICE_GAP_SECONDS`` of silence), so its diarization meets them all; the words it finds there
  are evidence for the labels and are never delivered. At most ``MAX_VOICES`` speakers (the most
  recently heard) are sampled: a replay costs at most ``MAX_VOICES * (voice_seconds +
  VOICE_GAP_SECONDS)`` seconds of samples on top of the audio it must re-send.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from beluga_voice.errors import ConfigurationError
from beluga_voice.stt.model import Alternative, Entity, TranscriptResult, Word, join_words, word_identity
from beluga_voice.stt.speakers import SpeakerMap

DEFAULT_REPLAY_SECONDS = 30.0
TIMELINE_TOLERANCE = 0.005
"""A final ending this close to (or before) the last delivered final is the same speech again."""
REPEAT_OVERLAP = 0.02
"""A replayed word overlapping a delivered word of the same text by more than this is that word."""
ECHO_SECONDS = 0.5
"""How far a re-decoded word's middle may move from the delivered word's and still be that word."""
TAIL_SECONDS = 10.0
"""Delivered final words kept (beyond the overlap) for duplicate checks and speaker votes."""
TAIL_WORDS = 512
VOICE_MIN_SECONDS = 1.0
"""Shortest run of one speaker's words kept as that speaker's voice sample."""
VOICE_GAP_SECONDS = 0.5
"""Silence after each voice sample: a pause where a diarizer may change speaker (a turn), short
enough that the samples stay a small part of a replay."""
VOICE_WEIGHT = 4.0
"""A voice sample's word is stronger evidence than an overlap: its speaker is known for sure."""
MAX_VOICES = 6
"""Speakers sampled on a new connection (the most recently heard), bounding what samples cost."""
REPLAY_PIECE_SECONDS = 0.1


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
    voice_sample_seconds: float = 0.0
    """Speaker samples replayed at the start of new connections (billed like replayed audio)."""


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
    lead: float = 0.0
    """Connection seconds of speaker samples before the stream's audio (not on its timeline)."""
    gaps: list[tuple[float, float]] = field(default_factory=list)
    inserted: float = 0.0

    def insert(self, at: float, seconds: float) -> None:
        self.gaps.append((at, seconds))
        self.inserted += seconds

    def to_stream(self, t: float) -> float:
        removed = self.lead
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
        voice_seconds: float = 0.0,
        frame_bytes: int = 2,
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
        if voice_seconds and voice_seconds < VOICE_MIN_SECONDS:
            raise ConfigurationError(
                f"voice_seconds must be 0 (off) or at least {VOICE_MIN_SECONDS:g}, got {voice_seconds}"
            )
        self.overlap_seconds = overlap_seconds
        self.voice_seconds = voice_seconds
        self.frame_bytes = frame_bytes
        self._overlap_bytes = int(overlap_seconds * bytes_per_second) if bytes_per_second else 0
        self._voices: dict[str, bytes] = {}  # stream speaker label -> a sample, least recently heard first
        self._samples: list[tuple[float, float, str]] = []  # this connection's (start, end, label)
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
        self._echo: dict[str | None, Word] = {}  # per channel: the last replayed word already delivered
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

    def buffer_full(self, incoming: int = 0) -> bool:
        """Whether ``incoming`` more bytes would push unanswered audio out of the replay buffer."""
        return (
            bool(self.replay_limit and self._buffer) and self._buffered_bytes + incoming > self.replay_limit
        )

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
        clock = self.clock
        clock.insert(clock.lead + self._seconds(self._head - self._origin_byte) + clock.inserted, seconds)

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
        samples = self._voice_samples() if reconnect else []
        lead = self._seconds(sum(map(len, samples)))
        self.clock = ConnectionClock(self._seconds(self._origin_byte), lead=lead)
        self._speakers = SpeakerMap(identity=not reconnect, reserved=(label for _, _, label in self._samples))
        self.connection_finals = 0
        self._echo = {}
        replay = [*samples, *(b.chunk for b in self._buffer)]
        if reconnect:
            self.stats.replayed_seconds += self._seconds(sum(len(c) for c in replay))
            self.stats.voice_sample_seconds += lead
        return replay

    def _voice_samples(self) -> list[bytes]:
        """Every known speaker's sample, each followed by silence, in replay-sized pieces."""
        self._samples = []
        if not self._voices or not self.bytes_per_second:
            return []
        gap = bytes(self._aligned(VOICE_GAP_SECONDS))
        piece = self._aligned(REPLAY_PIECE_SECONDS)
        pieces: list[bytes] = []
        at = 0.0
        for label, audio in self._voices.items():
            seconds = self._seconds(len(audio))
            self._samples.append((at, at + seconds, label))
            at += seconds + VOICE_GAP_SECONDS
            data = audio + gap
            pieces += [data[i : i + piece] for i in range(0, len(data), piece)]
        return pieces

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
            if self.clock.lead:
                result_or_none = self._past_samples(result)
                if result_or_none is None:
                    continue
                result = result_or_none
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

    def _past_samples(self, result: TranscriptResult) -> TranscriptResult | None:
        """Words heard in the speaker samples are votes for their labels, never results."""
        lead = self.clock.lead
        if result.start >= lead:
            return result
        for word in result.words:
            middle = _middle(word)
            if word.speaker is None or word.is_punctuation or middle >= lead:
                continue
            for start, end, label in self._samples:
                if start <= middle < end:
                    self._speakers.observe(word.speaker, label, (word.end - word.start) * VOICE_WEIGHT)
        rest = [w for w in result.words if _middle(w) >= lead]
        while rest and rest[0].is_punctuation:
            rest.pop(0)
        if not rest:
            return None if result.words or result.end <= lead else replace(result, start=lead)
        return replace(result, start=max(rest[0].start, lead), words=tuple(rest), text=join_words(rest))

    def _to_stream(self, result: TranscriptResult) -> TranscriptResult:
        clock = self.clock
        if not clock.gaps:
            offset = clock.origin - clock.lead
            return result.shifted(offset) if offset else result
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
        old = [w for w in result.words if _middle(w) < covered and not w.is_punctuation]
        if old:
            self._echo[result.channel] = old[-1]
        kept = _without_leading_punctuation([w for w in result.words if _middle(w) >= covered])
        tail = self._tail.get(result.channel)
        if tail:
            kept = _without_echoes(kept, list(tail), self._echo.get(result.channel))
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
        if self.voice_seconds:
            self._keep_voices(result)
        self._trim()

    def _keep_voices(self, result: TranscriptResult) -> None:
        """Keep a sample of each speaker while its audio is buffered: a newer run replaces the one
        kept if it is at least as long (a full ``voice_seconds``, or longer than the old one), so a
        short "Yes." never replaces a clear sentence; the speaker becomes the most recently heard."""
        run: list[Word] = []
        for word in [w for w in result.words if not w.is_punctuation] + [Word("", 0.0, 0.0)]:
            if run and word.speaker == run[0].speaker and word.text:
                run.append(word)
                continue
            label = run[0].speaker if run else None
            if label is not None:
                end = run[-1].end
                start = max(run[0].start, end - self.voice_seconds)
                kept = self._voices.pop(label, None)
                audio = self._slice(start, end) if end - start >= VOICE_MIN_SECONDS else None
                if audio is not None and (kept is None or len(audio) >= len(kept)):
                    kept = audio
                if kept is not None:
                    self._voices[label] = kept
                    while len(self._voices) > MAX_VOICES:
                        self._voices.pop(next(iter(self._voices)))
            run = [word]

    def _slice(self, start: float, end: float) -> bytes | None:
        """Buffered audio between two stream times (``None`` if part of it already left)."""
        first, last = self._aligned(start), self._aligned(end)
        parts: list[bytes] = []
        for item in self._buffer:
            item_end = item.start_byte + len(item.chunk)
            if item_end <= first:
                continue
            if item.start_byte >= last:
                break
            parts.append(item.chunk[max(first - item.start_byte, 0) : min(last, item_end) - item.start_byte])
        audio = b"".join(parts)
        return audio if len(audio) == last - first else None

    def _aligned(self, seconds: float) -> int:
        nbytes = int(seconds * (self.bytes_per_second or 0))
        return nbytes - nbytes % self.frame_bytes

    def _trim(self) -> None:
        if not self._final_until or not self.bytes_per_second:
            return
        keep_from = int(min(self._final_until.values()) * self.bytes_per_second) - self._overlap_bytes
        while self._buffer and self._buffer[0].start_byte + len(self._buffer[0].chunk) <= keep_from:
            self._buffered_bytes -= len(self._buffer.popleft().chunk)

    def _seconds(self, nbytes: int) -> float:
        return nbytes / self.bytes_per_second if self.bytes_per_second else 0.0


def _middle(word: Word) -> float:
    return (word.start + word.end) / 2


def _without_leading_punctuation(words: list[Word]) -> list[Word]:
    """Punctuation before the first kept word ended the sentence that was already delivered."""
    while words and words[0].is_punctuation:
        words = words[1:]
    return words


def _without_echoes(words: list[Word], tail: list[Word], echo: Word | None) -> list[Word]:
    """Drop the first replayed words that restate delivered words a little later than they were.

    The replay is aligned with the delivered words: after the last replayed word known to be a
    delivered one (``echo``), the next replayed word is that same speech again only if it is the
    next delivered word, with the same text, overlapping it in time. A word said twice ("five
    five") is the next word, not a restatement, and is kept. Without an ``echo`` (no replayed word
    before the cut), only the last delivered word can come back.
    """
    expected = len(tail) - 1
    if echo is not None:
        text, middle = word_identity(echo.text), _middle(echo)
        for index in range(len(tail) - 1, -1, -1):
            if word_identity(tail[index].text) == text and abs(_middle(tail[index]) - middle) <= ECHO_SECONDS:
                expected = index + 1
                break
    while words and expected < len(tail):
        word, delivered = words[0], tail[expected]
        same = word_identity(word.text) == word_identity(delivered.text)
        if not (same and word.start < delivered.end - REPEAT_OVERLAP and delivered.start < word.end):
            break
        words = _without_leading_punctuation(words[1:])
        expected += 1
    return words


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
