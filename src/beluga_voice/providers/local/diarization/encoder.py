"""resemblyzer's pretrained speaker encoder, run with numpy (no torch).

The network is a 3-layer LSTM (40 mel bands in, 256 hidden) whose last hidden state goes through
Linear(256, 256) and ReLU and is L2-normalised: a 256-d voice print where the cosine similarity of
two prints says how likely they are the same voice. An utterance is cut into 1.6 s windows
(``WINDOW_FRAMES``) whose prints are averaged, as the original does.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from beluga_voice.errors import ModelNotFoundError
from beluga_voice.providers.local.diarization.blas import single_threaded_blas
from beluga_voice.providers.local.diarization.checkpoint import load_legacy_checkpoint
from beluga_voice.providers.local.diarization.features import HOP, N_MELS, mel_spectrogram
from beluga_voice.providers.local.model_files import INSTALL_HINT

Float32Array = npt.NDArray[np.float32]

HIDDEN = 256
LAYERS = 3
EMBEDDING_SIZE = 256
WINDOW_FRAMES = 160  # 1.6 s of 10 ms frames
WINDOW_SAMPLES = WINDOW_FRAMES * HOP
DEFAULT_HOP_SECONDS = 0.77  # resemblyzer's 1.3 windows per second


def default_weights_path() -> Path:
    """Where resemblyzer's ``pretrained.pt`` is installed, found without importing resemblyzer."""
    spec = importlib.util.find_spec("resemblyzer")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelNotFoundError(
            "the speaker encoder (package resemblyzer==0.1.4, file pretrained.pt) is not installed; "
            f"{INSTALL_HINT}."
        )
    return Path(locations[0]) / "pretrained.pt"


class _LSTMLayer:
    def __init__(self, state: dict[str, Any], index: int, input_size: int) -> None:
        w_ih = _param(state, f"lstm.weight_ih_l{index}", (4 * HIDDEN, input_size))
        w_hh = _param(state, f"lstm.weight_hh_l{index}", (4 * HIDDEN, HIDDEN))
        bias = _param(state, f"lstm.bias_ih_l{index}", (4 * HIDDEN,)) + _param(
            state, f"lstm.bias_hh_l{index}", (4 * HIDDEN,)
        )
        self.w_ih_t = np.ascontiguousarray(w_ih.T)
        self.w_hh_t = np.ascontiguousarray(w_hh.T)
        self.bias = bias

    def run(self, inputs: Float32Array) -> Float32Array:
        """(batch, time, in) -> (batch, time, HIDDEN); PyTorch gate order i, f, g, o."""
        batch, steps, _ = inputs.shape
        projected = inputs @ self.w_ih_t + self.bias  # the input part of every step at once
        h = np.zeros((batch, HIDDEN), np.float32)
        c = np.zeros((batch, HIDDEN), np.float32)
        out = np.empty((batch, steps, HIDDEN), np.float32)
        for t in range(steps):
            gates = projected[:, t] + h @ self.w_hh_t
            i = _sigmoid(gates[:, :HIDDEN])
            f = _sigmoid(gates[:, HIDDEN : 2 * HIDDEN])
            g = np.tanh(gates[:, 2 * HIDDEN : 3 * HIDDEN])
            o = _sigmoid(gates[:, 3 * HIDDEN :])
            c = f * c + i * g
            h = o * np.tanh(c)
            out[:, t] = h
        return out


class SpeakerEncoder:
    """Voice prints from 16 kHz audio. Stateless after loading, so safe to share between threads."""

    def __init__(self, weights_path: Path | None = None) -> None:
        path = weights_path or default_weights_path()
        if not path.is_file():
            raise ModelNotFoundError(
                f"{path}: the speaker encoder weights (resemblyzer's pretrained.pt) are missing; {INSTALL_HINT}."
            )
        checkpoint = load_legacy_checkpoint(path)
        state = checkpoint.get("model_state")
        if not isinstance(state, dict):
            raise ModelNotFoundError(f"{path}: has no model_state; it is not resemblyzer's pretrained.pt")
        self.path = path
        single_threaded_blas()
        self._layers = [_LSTMLayer(state, k, N_MELS if k == 0 else HIDDEN) for k in range(LAYERS)]
        self._linear_t = np.ascontiguousarray(_param(state, "linear.weight", (EMBEDDING_SIZE, HIDDEN)).T)
        self._linear_bias = _param(state, "linear.bias", (EMBEDDING_SIZE,))

    def embed_mels(self, mels: Float32Array) -> Float32Array:
        """(batch, frames, 40) mel windows -> (batch, 256) L2-normalised prints."""
        hidden = mels.astype(np.float32)
        for layer in self._layers:
            hidden = layer.run(hidden)
        raw = np.maximum(hidden[:, -1] @ self._linear_t + self._linear_bias, 0.0)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        out: Float32Array = (raw / np.maximum(norms, 1e-8)).astype(np.float32)
        return out

    def embed(self, samples: Float32Array, hop_seconds: float = DEFAULT_HOP_SECONDS) -> Float32Array:
        """One print for a whole stretch of speech: the normalised mean of its window prints."""
        voice: Float32Array = self.embed_many([samples], hop_seconds)[0]
        return voice

    def embed_many(
        self, pieces: list[Float32Array], hop_seconds: float = DEFAULT_HOP_SECONDS
    ) -> Float32Array:
        """One print per piece, all windows through the network in a single batch (much faster)."""
        if not pieces:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        windows: list[Float32Array] = []
        owners: list[int] = []
        for index, piece in enumerate(pieces):
            starts = window_starts(piece.size, hop_seconds)
            end = max(starts) + WINDOW_SAMPLES
            mel = mel_spectrogram(np.pad(piece.astype(np.float32), (0, max(0, end - piece.size))))
            windows.extend(_frames(mel, s // HOP) for s in starts)
            owners.extend([index] * len(starts))
        prints = self.embed_mels(np.stack(windows))
        out = np.zeros((len(pieces), EMBEDDING_SIZE), np.float32)
        np.add.at(out, np.asarray(owners), prints)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        result: Float32Array = (out / np.maximum(norms, 1e-8)).astype(np.float32)
        return result


def window_starts(n_samples: int, hop_seconds: float, min_coverage: float = 0.75) -> list[int]:
    """Window start offsets covering ``n_samples``; a last window mostly past the end is dropped."""
    hop = max(HOP, round(hop_seconds * 16000 / HOP) * HOP)
    starts = list(range(0, max(1, n_samples - WINDOW_SAMPLES + hop), hop))
    if len(starts) > 1 and (n_samples - starts[-1]) / WINDOW_SAMPLES < min_coverage:
        starts.pop()
    return starts


def _frames(mel: Float32Array, first: int) -> Float32Array:
    window = mel[first : first + WINDOW_FRAMES]
    if window.shape[0] < WINDOW_FRAMES:
        window = np.pad(window, ((0, WINDOW_FRAMES - window.shape[0]), (0, 0)))
    return window


def _param(state: dict[str, Any], name: str, shape: tuple[int, ...]) -> Float32Array:
    value = state.get(name)
    if not isinstance(value, np.ndarray) or value.shape != shape:
        got = getattr(value, "shape", None)
        raise ModelNotFoundError(f"speaker encoder weights: {name} should have shape {shape}, found {got}")
    return value.astype(np.float32)


def _sigmoid(x: Float32Array) -> Float32Array:
    out: Float32Array = 0.5 * (np.tanh(0.5 * x) + 1.0)
    return out
