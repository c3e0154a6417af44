"""Where utterances start and how long the speaker has been silent, from VAD probabilities.

Sans-I/O: it sees probabilities of consecutive 32 ms windows and keeps sample positions; the
stream decides when an utterance ends (silence length, sentence end, maximum length) and tells
the tracker with :meth:`UtteranceTracker.close` or :meth:`UtteranceTracker.split`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from beluga_voice.providers.local.vad import WINDOW


@dataclass
class OpenUtterance:
    """Speech in progress: sample positions on the stream timeline."""

    start: int  # first sample sent to the decoder (speech onset minus the pre-roll)
    speech_end: int  # end of the last window judged speech
    speech_samples: int = 0
    probabilities: list[float] = field(default_factory=list)  # windows since ``start``'s window


@dataclass(frozen=True)
class ClosedUtterance:
    start: int
    end: int  # last sample sent to the decoder
    speech_end: int
    speech_samples: int


class UtteranceTracker:
    """Hysteresis over Silero probabilities: speech starts above ``threshold`` and continues
    while the probability stays above ``threshold - 0.15``."""

    def __init__(self, threshold: float = 0.5, pre_roll: int = 4000) -> None:
        self.threshold = threshold
        self.continue_threshold = max(threshold - 0.15, 0.01)
        self.pre_roll = pre_roll
        self.position = 0  # samples judged so far
        self.floor = 0  # the next utterance may not start before this (end of the previous one)
        self.open: OpenUtterance | None = None
        self.in_speech = False

    def push(self, probabilities: npt.NDArray[np.float32]) -> None:
        for probability in probabilities.tolist():
            start = self.position
            self.position += WINDOW
            self.in_speech = probability >= (self.continue_threshold if self.in_speech else self.threshold)
            if self.open is None:
                if not self.in_speech:
                    continue
                self.open = OpenUtterance(start=max(self.floor, start - self.pre_roll), speech_end=start)
            self.open.probabilities.append(probability)
            if self.in_speech:
                self.open.speech_end = self.position
                self.open.speech_samples += WINDOW

    @property
    def silence(self) -> int:
        """Samples since the open utterance's last speech (0 without one)."""
        return self.position - self.open.speech_end if self.open else 0

    def close(self, end: int) -> ClosedUtterance:
        """End the open utterance at sample ``end``; the next one starts no earlier."""
        assert self.open is not None
        end = max(min(end, self.position), self.open.start)
        closed = ClosedUtterance(
            self.open.start, end, min(self.open.speech_end, end), self.open.speech_samples
        )
        self.floor = end
        self.open = None
        return closed

    def split(self, lo: int, hi: int) -> ClosedUtterance:
        """Cut the open utterance in its quietest window between samples ``lo`` and ``hi``; the
        speech after the cut continues as a new open utterance."""
        assert self.open is not None
        probabilities = self.open.probabilities
        first_window = self.position - WINDOW * len(probabilities)
        begin = min(max(0, -(-(lo - first_window) // WINDOW)), len(probabilities) - 1)
        stop = max(begin + 1, min(len(probabilities), (hi - first_window) // WINDOW))
        quietest = begin + int(np.argmin(probabilities[begin:stop]))
        cut = first_window + WINDOW * quietest + WINDOW // 2
        speech_end, total, kept = (
            self.open.speech_end,
            self.open.speech_samples,
            probabilities[quietest + 1 :],
        )
        kept_speech = WINDOW * sum(p >= self.continue_threshold for p in kept)
        closed = self.close(cut)
        closed = ClosedUtterance(closed.start, closed.end, closed.speech_end, max(total - kept_speech, 0))
        if speech_end > cut:
            self.open = OpenUtterance(cut, speech_end, kept_speech, list(kept))
        return closed
