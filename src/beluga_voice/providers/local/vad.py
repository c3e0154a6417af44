"""Streaming voice activity detection with the Silero v6 model that faster-whisper ships (ONNX).

faster-whisper only runs Silero over whole arrays; a live stream needs the same network fed one
32 ms window at a time with its recurrent state carried over, which is what this class does.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from faster_whisper.vad import get_vad_model

FloatArray = npt.NDArray[np.float32]

WINDOW = 512  # samples per decision at 16 kHz (32 ms)
_CONTEXT = 64  # samples of the previous window the model sees before each window
_STATE_SHAPE = (1, 1, 128)


class StreamingVAD:
    """Speech probabilities, one per complete 32 ms window, from audio pushed in pieces of any size.

    The stream session feeds it exactly one window per call, so no probability can depend on how
    a client's frames happened to group the windows into one batch.
    """

    def __init__(self) -> None:
        self._session = get_vad_model().session  # shared; onnxruntime sessions are thread-safe
        self._h = np.zeros(_STATE_SHAPE, np.float32)
        self._c = np.zeros(_STATE_SHAPE, np.float32)
        self._context = np.zeros((1, _CONTEXT), np.float32)
        self._pending = np.zeros(0, np.float32)

    def feed(self, samples: FloatArray) -> FloatArray:
        """Probabilities for the windows completed by ``samples`` (possibly none)."""
        data = np.concatenate((self._pending, samples.astype(np.float32, copy=False)))
        count = data.size // WINDOW
        self._pending = data[count * WINDOW :]
        if count == 0:
            return np.zeros(0, np.float32)
        windows = data[: count * WINDOW].reshape(count, WINDOW)
        contexts = np.concatenate((self._context, windows[:-1, -_CONTEXT:]), axis=0)
        self._context = windows[-1:, -_CONTEXT:].copy()
        probabilities, self._h, self._c = self._session.run(
            None, {"input": np.concatenate((contexts, windows), axis=1), "h": self._h, "c": self._c}
        )
        out: FloatArray = np.asarray(probabilities, np.float32).reshape(-1)
        return out
