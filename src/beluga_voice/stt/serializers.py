"""Transcripts as files: text, JSON, JSON lines, SRT, WebVTT and RTTM.

Every format is built from the same model (:class:`Transcript` segments, or single
:class:`TranscriptResult` events for JSON lines), so they never disagree about times or speakers.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from beluga_voice.errors import ConfigurationError
from beluga_voice.stt.model import (
    Alternative,
    Entity,
    Segment,
    Transcript,
    TranscriptResult,
    Word,
    join_words,
    seconds,
)

OutputFormat = Literal["text", "json", "jsonl", "srt", "vtt", "rttm"]
FORMATS: tuple[OutputFormat, ...] = ("text", "json", "jsonl", "srt", "vtt", "rttm")

# Subtitle conventions: two lines of about 42 characters, at most ~7 s on screen.
MAX_LINE_CHARS = 42
MAX_CUE_CHARS = 2 * MAX_LINE_CHARS
MAX_CUE_SECONDS = 7.0
# A pause longer than this ends a subtitle cue or an RTTM speaker turn: nobody speaks during it.
MAX_PAUSE_SECONDS = 1.0
# Word timings can make a cue last 0 ms, which players never show; keep each up long enough to read
# (without running into the next cue).
MIN_CUE_SECONDS = 0.8

_SENTENCE_END = (".", "?", "!", "…")


def serialize(transcript: Transcript, fmt: OutputFormat, *, file_id: str = "audio") -> str:
    """A whole transcript in one of :data:`FORMATS` (``file_id`` names the recording in RTTM)."""
    if fmt == "text":
        return to_text(transcript)
    if fmt == "json":
        return to_json(transcript)
    if fmt == "jsonl":
        return to_jsonl(transcript.results)
    if fmt == "srt":
        return to_srt(transcript)
    if fmt == "vtt":
        return to_vtt(transcript)
    if fmt == "rttm":
        return to_rttm(transcript, file_id=file_id)
    raise ConfigurationError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")


# --- text and JSON ---------------------------------------------------------------------------------


def to_text(transcript: Transcript) -> str:
    """One line per segment, prefixed ``label: `` when the speaker (or channel) is known."""
    lines = []
    for segment in transcript.segments():
        label = segment_label(segment)
        text = _one_line(segment.text)
        if text:
            lines.append(f"{label}: {text}" if label else text)
    return "".join(line + "\n" for line in lines)


def to_json(transcript: Transcript, *, indent: int | None = 2) -> str:
    """The stable JSON document of :meth:`Transcript.to_dict` (schema in docs/python-api.md)."""
    return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=indent) + "\n"


def result_to_dict(result: TranscriptResult) -> dict[str, Any]:
    """Every field of one result event, as JSON-ready data (the JSON lines schema)."""
    return {
        "result_id": result.result_id,
        "is_partial": result.is_partial,
        "start": seconds(result.start),
        "end": seconds(result.end),
        "text": result.text,
        "speaker": result.speaker,
        "channel": result.channel,
        "language_code": result.language_code,
        "language_scores": [
            {"language_code": s.language_code, "score": s.score} for s in result.language_scores
        ],
        "words": [_word_to_dict(w) for w in result.words],
        "entities": [_entity_to_dict(e) for e in result.entities],
        "alternatives": [_alternative_to_dict(a) for a in result.alternatives],
    }


def to_jsonl_line(result: TranscriptResult) -> str:
    """One result as one line of JSON (with its newline): write it the moment the result arrives."""
    return json.dumps(result_to_dict(result), ensure_ascii=False, separators=(",", ":")) + "\n"


def to_jsonl(results: Iterable[TranscriptResult]) -> str:
    """Many results as JSON lines, in order."""
    return "".join(to_jsonl_line(r) for r in results)


def _word_to_dict(word: Word) -> dict[str, Any]:
    return {
        "text": word.text,
        "start": seconds(word.start),
        "end": seconds(word.end),
        "confidence": word.confidence,
        "speaker": word.speaker,
        "stable": word.stable,
        "is_punctuation": word.is_punctuation,
        "vocabulary_filter_match": word.vocabulary_filter_match,
    }


def _entity_to_dict(entity: Entity) -> dict[str, Any]:
    return {
        "category": entity.category,
        "type": entity.type,
        "content": entity.content,
        "start": seconds(entity.start),
        "end": seconds(entity.end),
        "confidence": entity.confidence,
    }


def _alternative_to_dict(alternative: Alternative) -> dict[str, Any]:
    return {
        "text": alternative.text,
        "words": [_word_to_dict(w) for w in alternative.words],
        "entities": [_entity_to_dict(e) for e in alternative.entities],
    }


# --- subtitles -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle: a time span, its text and who says it."""

    start: float
    end: float
    text: str
    speaker: str | None = None


def subtitle_cues(
    transcript: Transcript,
    *,
    max_chars: int = MAX_CUE_CHARS,
    max_seconds: float = MAX_CUE_SECONDS,
    max_pause: float = MAX_PAUSE_SECONDS,
) -> list[Cue]:
    """Cues from segments, cut at sentence ends, long pauses and the length limits.

    A segment may hold minutes of one speaker; a subtitle must stay short and on screen only while
    someone speaks, so segments are cut at word boundaries (punctuation stays with its word).
    """
    cues: list[Cue] = []
    for segment in transcript.segments():
        label = segment_label(segment)
        if not segment.words:
            text = _one_line(segment.text)
            if text:
                cues.append(Cue(segment.start, max(segment.end, segment.start), text, label))
            continue
        for run in _split_words(segment.words, max_chars, max_seconds, max_pause):
            cue = _cue(run, label)
            if cue is not None:
                cues.append(cue)
    return _readable(sorted(cues, key=lambda c: c.start))


def _readable(cues: list[Cue]) -> list[Cue]:
    out = []
    for index, cue in enumerate(cues):
        limit = cues[index + 1].start if index + 1 < len(cues) else float("inf")
        end = max(cue.end, min(cue.start + MIN_CUE_SECONDS, limit))
        out.append(Cue(cue.start, end, cue.text, cue.speaker))
    return out


def to_srt(transcript: Transcript) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm`` times, ``speaker: `` prefix when known."""
    blocks = []
    for index, cue in enumerate(subtitle_cues(transcript), start=1):
        text = f"{cue.speaker}: {cue.text}" if cue.speaker else cue.text
        lines = _wrap(text)
        times = f"{_timestamp(cue.start, ',')} --> {_timestamp(cue.end, ',')}"
        blocks.append("\n".join([str(index), times, *lines]) + "\n")
    return "\n".join(blocks)


def to_vtt(transcript: Transcript) -> str:
    """WebVTT: ``HH:MM:SS.mmm`` times, the speaker as a voice span ``<v speaker>`` when known."""
    blocks = ["WEBVTT\n"]
    for cue in subtitle_cues(transcript):
        lines = [_vtt_escape(line) for line in _wrap(cue.text)]
        if cue.speaker:
            lines[0] = f"<v {_vtt_escape(cue.speaker)}>{lines[0]}"
        times = f"{_timestamp(cue.start, '.')} --> {_timestamp(cue.end, '.')}"
        blocks.append("\n".join([times, *lines]) + "\n")
    return "\n".join(blocks)


def _split_words(
    words: Sequence[Word], max_chars: int, max_seconds: float, max_pause: float
) -> list[list[Word]]:
    runs: list[list[Word]] = []
    run: list[Word] = []
    for word in words:
        if run and not word.is_punctuation and _should_cut(run, word, max_chars, max_seconds, max_pause):
            runs.append(run)
            run = []
        run.append(word)
    if run:
        runs.append(run)
    return runs


def _should_cut(run: list[Word], word: Word, max_chars: int, max_seconds: float, max_pause: float) -> bool:
    spoken = [w for w in run if not w.is_punctuation]
    if not spoken:
        return False
    return (
        run[-1].text.endswith(_SENTENCE_END)
        or word.start - spoken[-1].end > max_pause
        or word.end - spoken[0].start > max_seconds
        or len(join_words([*run, word])) > max_chars
    )


def _cue(run: list[Word], label: str | None) -> Cue | None:
    text = _one_line(join_words(run))
    if not text:
        return None
    spoken = [w for w in run if not w.is_punctuation] or run
    return Cue(spoken[0].start, max(spoken[-1].end, spoken[0].start), text, label)


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, width=MAX_LINE_CHARS, break_long_words=False, break_on_hyphens=False) or [text]


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- RTTM ------------------------------------------------------------------------------------------


def to_rttm(transcript: Transcript, *, file_id: str = "audio", max_pause: float = MAX_PAUSE_SECONDS) -> str:
    """Who spoke when, as NIST RTTM ``SPEAKER`` lines (for diarization scoring tools).

    A transcript with ``speaker_turns`` (the local engine's file mode) gives those: all the speech the
    diarizer heard, overlaps included, not only the stretches that became words. Otherwise turns come
    from segments with a speaker (or, with channel identification, a channel), cut at pauses longer
    than ``max_pause`` so silence is never attributed to anyone; segments without any label are left
    out, as RTTM has no way to say "someone".
    """
    file_field = _rttm_field(file_id) or "audio"
    turns = [_RttmTurn(t.start, t.end, _speaker_label(t.speaker), None) for t in transcript.speaker_turns]
    return "".join(
        f"SPEAKER {file_field} {_rttm_channel(t.channel)} {t.start:.3f} {max(t.end - t.start, 0.0):.3f} "
        f"<NA> <NA> {_rttm_field(t.label)} <NA> <NA>\n"
        for t in turns or _word_turns(transcript, max_pause)
    )


@dataclass(frozen=True, slots=True)
class _RttmTurn:
    start: float
    end: float
    label: str
    channel: str | None


def _word_turns(transcript: Transcript, max_pause: float) -> list[_RttmTurn]:
    turns: list[_RttmTurn] = []
    for segment in transcript.segments():
        label = segment_label(segment)
        if label is None:
            continue
        spans = (
            [(segment.start, segment.end)]
            if not segment.words
            else [_span(run) for run in _split_at_pauses(segment.words, max_pause)]
        )
        turns.extend(_RttmTurn(start, end, label, segment.channel) for start, end in spans)
    return turns


def _split_at_pauses(words: Sequence[Word], max_pause: float) -> list[list[Word]]:
    runs: list[list[Word]] = []
    for word in words:
        if word.is_punctuation:
            continue
        if runs and word.start - runs[-1][-1].end <= max_pause:
            runs[-1].append(word)
        else:
            runs.append([word])
    return runs


def _span(run: list[Word]) -> tuple[float, float]:
    return run[0].start, max(run[-1].end, run[0].start)


def _rttm_channel(channel: str | None) -> int:
    # RTTM channels count from 1; Transcribe names channels ch_0, ch_1.
    match = re.fullmatch(r"ch_(\d+)", channel or "")
    return int(match.group(1)) + 1 if match else 1


def _rttm_field(value: str) -> str:
    return re.sub(r"\s+", "_", value.strip())


# --- shared ----------------------------------------------------------------------------------------


def segment_label(segment: Segment) -> str | None:
    """Who a segment belongs to: its speaker, else its channel, else nobody known.

    Streaming services number speakers "0", "1", ...; a bare number reads like a list item in
    text and subtitles, so it is shown as ``spk_0`` (the name Transcribe's batch output uses).
    """
    label = segment.speaker or segment.channel
    return None if label is None else _speaker_label(label)


def _speaker_label(label: str) -> str:
    return f"spk_{label}" if label.isdigit() else label


def _one_line(text: str) -> str:
    return " ".join(text.split())
