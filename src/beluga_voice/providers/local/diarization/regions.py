"""Speech regions of a whole recording from Silero VAD (the model faster-whisper ships).

Diarization takes its speech from the voice detector, not from decoded words: a backchannel
("mm-hm") that Whisper drops is still someone speaking, and it counts in who-spoke-when.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from faster_whisper.vad import VadOptions, get_speech_timestamps

FloatArray = npt.NDArray[np.float32]
SAMPLE_RATE = 16000


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
