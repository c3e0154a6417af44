"""The stream's recent audio, addressed by absolute sample position, trimmed as utterances finish."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


class SampleBuffer:
    def __init__(self) -> None:
        self._data = np.zeros(0, np.float32)
        self._base = 0  # absolute position of self._data[0]

    @property
    def end(self) -> int:
        """Absolute position just after the newest sample."""
        return self._base + self._data.size

    def append(self, samples: FloatArray) -> None:
        self._data = np.concatenate((self._data, samples.astype(np.float32, copy=False)))

    def slice(self, start: int, end: int) -> FloatArray:
        """Samples [start, end) that are still held (a copy, safe to hand to another thread)."""
        lo = max(start - self._base, 0)
        hi = max(min(end - self._base, self._data.size), lo)
        return self._data[lo:hi].copy()

    def discard_before(self, position: int) -> None:
        drop = min(max(position - self._base, 0), self._data.size)
        if drop:
            self._data = self._data[drop:]
            self._base += drop
