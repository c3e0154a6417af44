"""Replay of compressed audio (``flac``, ``ogg-opus``) on a new connection, sans-I/O.

PCM can be cut anywhere; a FLAC or Ogg Opus stream cannot: a new connection must begin with the
codec headers and then a frame (FLAC) or page (Ogg) boundary. :class:`MediaReplay` frames the
application's bytes as they are sent (:mod:`beluga_voice.audio.compressed`), keeps the headers and
the frames or pages not yet answered by final results (plus ``overlap_seconds`` answered ones as
context, bounded by ``replay_seconds``), and tells where on the media timeline the replay starts,
so results of the new connection are moved there and the timeline's duplicate filter drops words
already delivered.

A replay re-sends: the headers (FLAC: ``fLaC`` and STREAMINFO alone, 42 bytes; Ogg Opus: the ID
and comment header pages as the encoder wrote them), every buffered frame or page from the
boundary, and the bytes of the frame or page in progress, so the next live chunk continues it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from beluga_voice.audio.compressed import MediaUnit, OggFramer, new_framer
from beluga_voice.errors import AudioFormatError
from beluga_voice.stt.model import TranscriptResult

OPUS_PREROLL_SECONDS = 0.08
"""A fresh Opus decoder needs this much audio to converge (RFC 7845 section 4.6): replayed first."""
MAX_REPLAY_PIECE = 32 * 1024
"""Largest AudioEvent of a replay (the service's older chunk limit)."""


@dataclass(frozen=True)
class Replay:
    """What a new connection starts with, and where it starts on the stream's media timeline."""

    chunks: list[bytes]
    origin: float
    seconds: float


class MediaReplay:
    """The replay buffer of one compressed stream: headers, unanswered frames/pages, their times."""

    def __init__(self, encoding: str, replay_seconds: float, overlap_seconds: float = 0.0) -> None:
        self.encoding = encoding
        self.framer = new_framer(encoding)
        self.replay_seconds = replay_seconds
        self.overlap_seconds = overlap_seconds
        self._preroll = OPUS_PREROLL_SECONDS if isinstance(self.framer, OggFramer) else 0.0
        self._units: deque[MediaUnit] = deque()
        self._buffered = 0  # samples held in _units
        self._end = 0  # first sample after the last complete unit
        self._covered: dict[str | None, float] = {}  # per channel: end of the last final delivered
        self._lost_until = 0.0
        self.lost_seconds = 0.0
        self.unframed: str | None = None
        """Why the stream could not be framed (then it cannot be replayed); ``None`` while it can."""

    @property
    def media_time(self) -> float:
        """Seconds of audio in the complete frames or pages sent so far."""
        rate = self.framer.clock_rate
        skip = self.framer.head.pre_skip if isinstance(self.framer, OggFramer) and self.framer.head else 0
        return max(0, self._end - skip) / rate if rate else 0.0

    def record(self, chunk: bytes) -> None:
        """Application bytes sent (or waiting for a connection): framed and kept for replay."""
        self._framed(chunk)

    def finish(self) -> None:
        """The audio ended: its last frame is complete (and counted) too."""
        self._framed(None)

    def _framed(self, chunk: bytes | None) -> None:
        if self.unframed is not None:
            return
        try:
            units = self.framer.feed(chunk) if chunk is not None else self.framer.finish()
        except AudioFormatError as exc:  # the service will say so too; only the replay is given up
            self.unframed = exc.message
            self._units.clear()
            return
        for unit in units:
            self._units.append(unit)
            self._buffered += unit.samples
            self._end = unit.start + unit.samples
        limit = self.replay_seconds * self.framer.clock_rate
        while self._buffered > limit and len(self._units) > 1:
            self._buffered -= self._units.popleft().samples

    def answered(self, results: Iterable[TranscriptResult]) -> None:
        """Results delivered on the stream's timeline: frames or pages their finals cover leave."""
        for result in results:
            if not result.is_partial:
                self._covered[result.channel] = max(self._covered.get(result.channel, 0.0), result.end)
        if self._covered:
            self._trim(min(self._covered.values()) - self.overlap_seconds - self._preroll)

    def begin(self, *, reconnect: bool) -> Replay:
        """A connection starts: the chunks to send first (none on the first connection)."""
        if not reconnect:
            return Replay([], 0.0, 0.0)
        if self.unframed is not None:
            raise AudioFormatError(
                f"cannot replay the {self.encoding} stream on a new connection: {self.unframed}"
            )
        header = self.framer.header
        if header is None:  # still inside the headers: send what there is from the start
            return Replay(self._pieces([self.framer.pending]), 0.0, 0.0)
        rate = self.framer.clock_rate
        start = self._units[0].start if self._units else self._end
        origin = start / rate
        covered = min(self._covered.values()) if self._covered else 0.0
        gap_from = max(covered, self._lost_until)
        if origin > gap_from:
            self.lost_seconds += origin - gap_from
        self._lost_until = max(self._lost_until, origin)
        parts = [header, *(unit.data for unit in self._units), self.framer.pending]
        return Replay(self._pieces(parts), origin, (self._end - start) / rate)

    def _trim(self, keep_from: float) -> None:
        units, rate = self._units, self.framer.clock_rate
        keep = 0
        while keep < len(units) and (units[keep].start + units[keep].samples) / rate <= keep_from:
            keep += 1
        while 0 < keep < len(units) and units[keep].continued:
            keep -= 1  # an Ogg page that finishes a packet needs the page where the packet began
        for _ in range(keep):
            self._buffered -= units.popleft().samples

    @staticmethod
    def _pieces(parts: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for part in parts:
            out += [part[i : i + MAX_REPLAY_PIECE] for i in range(0, len(part), MAX_REPLAY_PIECE)]
        return out
