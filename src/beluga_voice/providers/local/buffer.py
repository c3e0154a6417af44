"""The stream's recent audio, addressed by absolute sample position, trimmed as utterances finish.

Appends are amortised (the storage grows by doubling and is compacted when trimmed), so feeding
20 ms frames costs no more than feeding 200 ms ones.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

_MIN_CAPACITY = 16000


class SampleBuffer:
    def __init__(self) -> None:
        self._data = np.zeros(0, np.float32)
        self._start = 0  # index in self._data of the oldest sample held
        self._stop = 0  # index in self._data just after the newest sample
        self._base = 0  # absolute position of self._data[self._start]

    @property
    def end(self) -> int:
        """Absolute position just after the newest sample."""
        return self._base + self._stop - self._start

    def append(self, samples: FloatArray) -> None:
        count = samples.size
        if self._stop + count > self._data.size:
            held = self._stop - self._start
            grown = np.zeros(max(2 * (held + count), _MIN_CAPACITY), np.float32)
            grown[:held] = self._data[self._start : self._stop]
            self._data, self._start, self._stop = grown, 0, held
        self._data[self._stop : self._stop + count] = samples
        self._stop += count

    def slice(self, start: int, end: int) -> FloatArray:
        """Samples [start, end) that are still held (a copy, safe to hand to another thread)."""
        lo = self._start + max(start - self._base, 0)
        hi = max(min(self._start + end - self._base, self._stop), lo)
        return self._data[lo:hi].copy()

    def discard_before(self, position: int) -> None:
        drop = min(max(position - self._base, 0), self._stop - self._start)
        self._start += drop
        self._base += drop
