"""Cutting an utterance's words into probable speaker turns and taking a voice print of each.

An utterance ends after a pause, but in a lively conversation one speaker answers the other with
almost no gap, so one utterance can hold two voices. Turns are cut where a sentence ends or the
words pause; each turn's audio gets its own print, so a change of voice inside an utterance can
be found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from beluga_voice.providers.local.diarization.encoder import SpeakerEncoder
from beluga_voice.providers.local.words import SENTENCE_END
from beluga_voice.stt.model import Word

FloatArray = npt.NDArray[np.float32]
SAMPLE_RATE = 16000
TURN_GAP = 0.3  # a pause between words this long may be a change of speaker
MIN_TURN = 0.6  # seconds of speech below which a turn is merged into the next
CHANGE_THRESHOLD = 0.4  # CAM++ prints of the two sides of a gap less alike than this: another voice
MIN_CHANGE_SIDE = 1.2  # seconds each side of a candidate change needs for a print to be trusted
CHANGE_WINDOW = 1.5  # s of audio per print when looking for a change of voice inside a turn
CHANGE_HOP = 1.5  # s between window starts: side by side, the turn heard once
_MAX_CUTS = 6  # word gaps tried per turn (the widest ones)
_EDGE = 0.05  # audio kept around a turn's words


@dataclass(frozen=True)
class Turn:
    """A stretch of one probable speaker, ``start`` to ``end`` on the stream timeline."""

    start: float
    end: float
    voice: FloatArray  # L2-normalised print

    @property
    def duration(self) -> float:
        return self.end - self.start


def turn_spans(words: Sequence[Word], gap: float = TURN_GAP) -> list[tuple[int, int]]:
    """Index ranges of turns: a turn ends after sentence-final punctuation or before a pause."""
    spans: list[tuple[int, int]] = []
    first = 0
    previous_end: float | None = None
    for index, word in enumerate(words):
        if word.is_punctuation:
            if any(c in SENTENCE_END for c in word.text) and index > first:
                spans.append((first, index))
                first, previous_end = index + 1, None
            continue
        if previous_end is not None and word.start - previous_end >= gap and index > first:
            spans.append((first, index - 1))
            first = index
        previous_end = word.end
    if first < len(words):
        spans.append((first, len(words) - 1))
    spans = [(a, b) for a, b in spans if any(not w.is_punctuation for w in words[a : b + 1])]
    return _merge_short(spans, words)


def _merge_short(spans: list[tuple[int, int]], words: Sequence[Word]) -> list[tuple[int, int]]:
    """A turn too short to judge a voice (say "Four." before "Queen of clubs.") joins the next one."""
    merged: list[tuple[int, int]] = []
    carry: int | None = None
    for first, last in spans:
        first = carry if carry is not None else first
        carry = None
        if _spoken_seconds(words[first : last + 1]) < MIN_TURN:
            carry = first
            continue
        merged.append((first, last))
    if carry is not None:
        if merged:
            merged[-1] = (merged[-1][0], len(words) - 1)
        else:
            merged.append((carry, len(words) - 1))
    return merged


def _spoken_seconds(words: Sequence[Word]) -> float:
    spoken = [w for w in words if not w.is_punctuation]
    return spoken[-1].end - spoken[0].start if spoken else 0.0


def embed_turns(
    encoder: SpeakerEncoder,
    samples: FloatArray,
    offset: float,
    words: Sequence[Word],
    change_threshold: float = CHANGE_THRESHOLD,
) -> list[Turn]:
    """A print per turn, from the utterance audio ``samples`` that starts at ``offset`` seconds.

    A long turn is also checked for a change of voice at its word gaps (the next speaker may
    start without a pause or a full stop): where the prints before and after a gap differ most,
    and less than ``change_threshold`` alike, the turn is cut in two.
    """
    times = [span for first, last in turn_spans(words) for span in _spoken_times(words[first : last + 1])]
    times = [
        part for span in times for part in _split_at_change(encoder, samples, offset, span, change_threshold)
    ]
    kept = [(span, _clip(samples, offset, span[0][0], span[-1][1])) for span in times]
    kept = [(span, piece) for span, piece in kept if piece.size >= SAMPLE_RATE // 10]
    voices = encoder.embed_many([piece for _, piece in kept])
    return [Turn(span[0][0], span[-1][1], voice) for (span, _), voice in zip(kept, voices, strict=True)]


_Span = list[tuple[float, float]]  # the (start, end) of each spoken word of a turn


def _spoken_times(words: Sequence[Word]) -> list[_Span]:
    spoken = [(w.start, w.end) for w in words if not w.is_punctuation]
    return [spoken] if spoken else []


def _split_at_change(
    encoder: SpeakerEncoder, samples: FloatArray, offset: float, span: _Span, threshold: float
) -> list[_Span]:
    """``span`` cut where the voice changes most, if it does (recursively, for three voices).

    The two sides of each candidate gap are compared through prints of fixed windows laid over the
    turn once (``CHANGE_WINDOW`` s every ``CHANGE_HOP`` s, one batch), each side the mean of the
    windows inside it: the turn goes through the network about once instead of twice per gap tried,
    and the final of a long utterance waits for it (measured on a 6.9 s turn: 0.4 s instead of 1.1 s).
    Means of window prints also told voices apart better than whole sides on spliced test pairs.
    """
    if not _candidate_cuts(span):
        return [span]  # no gap could be a change: no prints needed
    windows = _windows(span[0][0], span[-1][1])
    prints = encoder.embed_many([_clip(samples, offset, start, end) for start, end in windows])
    return _cut_at_change(span, windows, prints, threshold)


def _windows(start: float, end: float) -> list[tuple[float, float]]:
    """Windows every ``CHANGE_HOP`` from ``start``, and one ending at ``end`` (so the end is heard)."""
    count = max(1, int((end - start - CHANGE_WINDOW) / CHANGE_HOP + 1e-9) + 1)
    windows = [(start + i * CHANGE_HOP, start + i * CHANGE_HOP + CHANGE_WINDOW) for i in range(count)]
    if windows[-1][1] < end - 0.1:
        windows.append((end - CHANGE_WINDOW, end))
    return windows


def _cut_at_change(
    span: _Span, windows: list[tuple[float, float]], prints: FloatArray, threshold: float
) -> list[_Span]:
    best, lowest = None, threshold
    for k in _candidate_cuts(span):
        before = _mean_print(windows, prints, span[0][0], span[k][0])
        after = _mean_print(windows, prints, span[k - 1][1], span[-1][1])
        if before is not None and after is not None and float(before @ after) < lowest:
            best, lowest = k, float(before @ after)
    if best is None:
        return [span]
    return _cut_at_change(span[:best], windows, prints, threshold) + _cut_at_change(
        span[best:], windows, prints, threshold
    )


def _candidate_cuts(span: _Span) -> list[int]:
    """The widest word gaps of ``span`` with at least ``MIN_CHANGE_SIDE`` of speech on each side."""
    if span[-1][1] - span[0][0] < 2 * MIN_CHANGE_SIDE:
        return []
    cuts = [
        k
        for k in range(1, len(span))
        if span[k - 1][1] - span[0][0] >= MIN_CHANGE_SIDE and span[-1][1] - span[k][0] >= MIN_CHANGE_SIDE
    ]
    return sorted(cuts, key=lambda k: span[k][0] - span[k - 1][1], reverse=True)[:_MAX_CUTS]


def _mean_print(
    windows: list[tuple[float, float]], prints: FloatArray, start: float, end: float
) -> FloatArray | None:
    """The normalised mean print of the windows lying within ``start``-``end`` (None if none does)."""
    inside = [i for i, (a, b) in enumerate(windows) if a >= start - _EDGE and b <= end + _EDGE]
    if not inside:
        return None
    mean = prints[inside].mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else None


def _clip(samples: FloatArray, offset: float, start: float, end: float) -> FloatArray:
    lo = max(0, int((start - _EDGE - offset) * SAMPLE_RATE))
    hi = min(samples.size, int((end + _EDGE - offset) * SAMPLE_RATE))
    return normalize_level(samples[lo:hi]) if hi > lo else np.zeros(0, np.float32)


def normalize_level(samples: FloatArray, target_dbfs: float = -30.0) -> FloatArray:
    """Raise quiet audio to ``target_dbfs`` RMS (never lower it), as the encoder was trained."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    if rms <= 1e-6:
        return samples
    gain = 10 ** ((target_dbfs - 20 * np.log10(rms)) / 20)
    return (samples * gain).astype(np.float32) if gain > 1 else samples
