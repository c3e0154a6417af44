"""The result model: everything Amazon Transcribe returns, so no provider has to drop data.

Times are seconds on one continuous media timeline that starts at the first audio sample of the
stream (reconnections included). Fields a provider cannot fill are ``None`` or empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class Word:
    """One item of a result: a pronounced word or a punctuation mark."""

    text: str
    start: float
    end: float
    confidence: float | None = None
    speaker: str | None = None
    stable: bool | None = None
    is_punctuation: bool = False
    vocabulary_filter_match: bool = False

    def shifted(self, offset: float) -> Word:
        """The same word moved on the timeline (used when a stream is resumed)."""
        return replace(self, start=self.start + offset, end=self.end + offset)


@dataclass(frozen=True, slots=True)
class LanguageScore:
    """One candidate of automatic language identification."""

    language_code: str
    score: float


@dataclass(frozen=True, slots=True)
class Entity:
    """A PII entity found in a result."""

    category: str
    type: str
    content: str
    start: float
    end: float
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class Alternative:
    """A further hypothesis for a result (the best one is the result itself)."""

    text: str
    words: tuple[Word, ...] = ()
    entities: tuple[Entity, ...] = ()


@dataclass(frozen=True, slots=True)
class TranscriptResult:
    """One partial or final result of a streaming transcription.

    Partials of one segment share ``result_id`` and grow until one final (``is_partial`` false).
    """

    result_id: str
    is_partial: bool
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    channel: str | None = None
    language_code: str | None = None
    language_scores: tuple[LanguageScore, ...] = ()
    entities: tuple[Entity, ...] = ()
    alternatives: tuple[Alternative, ...] = ()

    def shifted(self, offset: float) -> TranscriptResult:
        """The same result moved on the timeline (used when a stream is resumed)."""
        return replace(
            self,
            start=self.start + offset,
            end=self.end + offset,
            words=tuple(w.shifted(offset) for w in self.words),
            entities=tuple(_shift_entity(e, offset) for e in self.entities),
            alternatives=tuple(
                replace(
                    a,
                    words=tuple(w.shifted(offset) for w in a.words),
                    entities=tuple(_shift_entity(e, offset) for e in a.entities),
                )
                for a in self.alternatives
            ),
        )

    @property
    def is_final(self) -> bool:
        return not self.is_partial

    @property
    def speaker(self) -> str | None:
        """The speaker of most of the result's words (``None`` without diarization)."""
        counts: dict[str, int] = {}
        for word in self.words:
            if word.speaker is not None and not word.is_punctuation:
                counts[word.speaker] = counts.get(word.speaker, 0) + 1
        return max(counts, key=lambda s: counts[s]) if counts else None

    @property
    def stable_text(self) -> str:
        """The prefix of the text that will not change: all of a final, the stable words of a partial."""
        if self.is_final:
            return self.text
        stable: list[Word] = []
        for word in self.words:
            if not word.stable:
                break
            stable.append(word)
        return join_words(stable)


@dataclass(frozen=True, slots=True)
class Segment:
    """Consecutive final words of one speaker (and channel), as a transcript shows them."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    speaker: str | None = None
    channel: str | None = None
    language_code: str | None = None


@dataclass(frozen=True, slots=True)
class SpeakerTurn:
    """A span of one speaker's speech, whether or not any word of it was decoded."""

    speaker: str
    start: float
    end: float


@dataclass(slots=True)
class Transcript:
    """A whole transcription assembled from final results.

    ``speaker_turns`` is who spoke when as a diarizer that hears all speech found it (backchannels,
    overlaps and far-field speech the recogniser gave no word included), with the labels the words
    carry; it stays empty where a provider only labels words (streaming, Amazon Transcribe).
    """

    provider: str
    results: list[TranscriptResult] = field(default_factory=list)
    duration: float | None = None
    language_code: str | None = None
    speaker_turns: list[SpeakerTurn] = field(default_factory=list)

    def add(self, result: TranscriptResult) -> None:
        """Keep a final result; partials are not part of a transcript."""
        if result.is_final:
            self.results.append(result)

    @property
    def text(self) -> str:
        return " ".join(r.text for r in self.results if r.text).strip()

    @property
    def words(self) -> list[Word]:
        return [w for r in self.results for w in r.words]

    @property
    def speakers(self) -> list[str]:
        """Speaker labels in order of first appearance."""
        seen: dict[str, None] = {}
        for word in self.words:
            if word.speaker is not None:
                seen.setdefault(word.speaker, None)
        return list(seen)

    def dominant_language(self) -> str | None:
        """The language spoken longest over the final results (``None`` when none is known)."""
        spoken: dict[str, float] = {}
        for result in self.results:
            if result.language_code:
                spoken[result.language_code] = spoken.get(result.language_code, 0.0) + (
                    result.end - result.start
                )
        return max(spoken, key=lambda c: spoken[c]) if spoken else None

    def segments(self) -> list[Segment]:
        """Group consecutive words of one speaker, channel and language into segments."""
        segments: list[Segment] = []
        for result in self.results:
            if not result.words:
                if result.text:
                    segments.append(
                        Segment(
                            result.start,
                            result.end,
                            result.text,
                            (),
                            None,
                            result.channel,
                            result.language_code,
                        )
                    )
                continue
            run: list[Word] = []
            for word in result.words:
                if run and _speaker_of(word, run) != _speaker_of(run[0], run):
                    segments.append(_segment(run, result))
                    run = []
                run.append(word)
            if run:
                segments.append(_segment(run, result))
        return _merge_adjacent(segments)

    def to_dict(self) -> dict[str, Any]:
        """The documented, stable JSON document (schema in docs/python-api.md)."""
        return {
            "provider": self.provider,
            "duration": None if self.duration is None else seconds(self.duration),
            "language_code": self.language_code,
            "text": self.text,
            "segments": [
                {
                    "start": seconds(s.start),
                    "end": seconds(s.end),
                    "speaker": s.speaker,
                    "channel": s.channel,
                    "language_code": s.language_code,
                    "text": s.text,
                    "words": [
                        {
                            "text": w.text,
                            "start": seconds(w.start),
                            "end": seconds(w.end),
                            "confidence": w.confidence,
                            "speaker": w.speaker,
                        }
                        for w in s.words
                    ],
                }
                for s in self.segments()
            ],
            "speaker_turns": [
                {"speaker": t.speaker, "start": seconds(t.start), "end": seconds(t.end)}
                for t in self.speaker_turns
            ],
        }


def seconds(value: float) -> float:
    """A time as documents show it: milliseconds, the service's precision (no 8.129999999999999)."""
    return round(value, 3)


_NOT_WORD = re.compile(r"[^\w']+")


def word_identity(text: str) -> str:
    """What makes two words the same word when comparing decodes: no case, no punctuation."""
    return _NOT_WORD.sub("", text.lower())


def join_words(words: Iterable[Word]) -> str:
    """Text of words as Transcribe writes it: spaces between words, none before punctuation."""
    parts: list[str] = []
    for word in words:
        if parts and not word.is_punctuation:
            parts.append(" ")
        parts.append(word.text)
    return "".join(parts)


def _shift_entity(entity: Entity, offset: float) -> Entity:
    return replace(entity, start=entity.start + offset, end=entity.end + offset)


def _speaker_of(word: Word, run: Sequence[Word]) -> str | None:
    # Punctuation carries no speaker of its own in Transcribe output: it belongs to the run it ends.
    if word.is_punctuation and word.speaker is None and run:
        return run[-1].speaker
    return word.speaker


def _segment(run: list[Word], result: TranscriptResult) -> Segment:
    spoken = [w for w in run if not w.is_punctuation] or run
    return Segment(
        start=spoken[0].start,
        end=spoken[-1].end,
        text=join_words(run),
        words=tuple(run),
        speaker=_speaker_of(run[0], run),
        channel=result.channel,
        language_code=result.language_code,
    )


def _merge_adjacent(segments: list[Segment]) -> list[Segment]:
    merged: list[Segment] = []
    for seg in segments:
        prev = merged[-1] if merged else None
        if (
            prev is not None
            and prev.words
            and seg.words
            and (prev.speaker, prev.channel, prev.language_code)
            == (seg.speaker, seg.channel, seg.language_code)
            and prev.speaker is not None
        ):
            words = prev.words + seg.words
            merged[-1] = Segment(
                prev.start, seg.end, join_words(words), words, prev.speaker, prev.channel, prev.language_code
            )
        else:
            merged.append(seg)
    return merged
