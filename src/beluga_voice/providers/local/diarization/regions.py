"""Speech regions of a whole recording from Silero VAD (the model faster-whisper ships).

Diarization takes its speech from the voice detector, not from decoded words: a backchannel
("mm-hm") that Whisper drops is still someone speaking, and it counts in who-spoke-when.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from faster_whisper.vad import VadOptions, get_speech_timestamps

from beluga_voice.stt.model import Word

FloatArray = npt.NDArray[np.float32]
SAMPLE_RATE = 16000
OPENING_MARKS = frozenset("\"'“(¿¡[")  # punctuation that belongs to the word after it


@dataclass(frozen=True)
class RegionSettings:
    threshold: float = 0.5  # Silero speech probability
    min_speech: float = 0.15  # s; shorter blips are dropped
    min_silence: float = 0.25  # s of silence that ends a region
    pad: float = 0.05  # s added each side (the detector reacts a window late)


def speech_regions(
    samples: FloatArray, settings: RegionSettings = RegionSettings()
) -> list[tuple[float, float]]:
    """(start, end) seconds of every stretch of speech, in order, not overlapping."""
    if samples.size == 0:
        return []
    options = VadOptions(
        threshold=settings.threshold,
        min_speech_duration_ms=round(settings.min_speech * 1000),
        min_silence_duration_ms=round(settings.min_silence * 1000),
        speech_pad_ms=round(settings.pad * 1000),
    )
    stamps = get_speech_timestamps(samples.astype(np.float32, copy=False), options, SAMPLE_RATE)
    regions: list[tuple[float, float]] = []
    for stamp in stamps:
        start, end = stamp["start"] / SAMPLE_RATE, stamp["end"] / SAMPLE_RATE
        if regions and start <= regions[-1][1]:
            regions[-1] = (regions[-1][0], max(end, regions[-1][1]))
        elif end > start:
            regions.append((start, end))
    return regions


def fit_to_speech(words: Sequence[Word], regions: Sequence[tuple[float, float]]) -> list[Word]:
    """Word times kept inside the speech they belong to.

    Whisper's batch word times often stretch a phrase's last word over the silence after it (up to
    the next phrase), which subtitles and who-spoke-when would show as speech. A word that starts in
    a speech region ends at the latest where the region ends; one that ends in a region starts at the
    earliest where it begins. Words outside every region are left as they are; the order of items
    never changes, and punctuation moves with its word.
    """
    starts = [a for a, _ in regions]
    fitted: dict[int, Word] = {}  # index -> the spoken word with its fitted times
    for index, word in enumerate(words):
        if word.is_punctuation:
            continue
        start, end = word.start, word.end
        inside = bisect.bisect_right(starts, start) - 1
        if inside >= 0 and start < regions[inside][1]:
            end = min(end, regions[inside][1])
        else:
            after = bisect.bisect_right(starts, end) - 1
            if after >= 0 and after != inside and end <= regions[after][1]:
                start = max(start, regions[after][0])
        fitted[index] = replace(word, start=round(start, 3), end=round(max(start, end), 3))
    out: list[Word] = []
    for index, word in enumerate(words):
        if index in fitted:
            out.append(fitted[index])
            continue
        previous = next((k for k in range(index - 1, -1, -1) if k in fitted), None)
        following = next((k for k in range(index + 1, len(words)) if k in fitted), None)
        opening = word.text[:1] in OPENING_MARKS
        if previous is not None and (following is None or not opening):
            at = fitted[previous].end  # a closing mark stays at the end of its word
        elif following is not None:
            at = fitted[following].start  # an opening mark at the start of the next
        else:
            at = word.start
        out.append(replace(word, start=at, end=at))
    return out
