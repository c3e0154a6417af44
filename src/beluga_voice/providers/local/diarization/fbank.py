"""Kaldi's log mel filterbank (80 bins, 16 kHz), the input CAM++ was trained on, in numpy.

CAM++ (3D-Speaker) computes its features with Kaldi's ``compute-fbank-feats`` defaults, so this
follows them: frames of 25 ms every 10 ms with no padding at the edges ("snip edges"), no dither,
the frame's mean removed, pre-emphasis 0.97, Povey's window (a Hann window raised to 0.85), zero
padding to 512 points, the power spectrum, 80 triangular filters equally spaced on the mel scale
(1127 ln(1 + f / 700)) from 20 Hz to 8 kHz, and the log of each filter's energy floored at float32
epsilon. The features are then centred over time (each bin minus its mean over the utterance), as
3D-Speaker does before the network, so a constant gain on the input changes nothing.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16000
FRAME_LENGTH = 400  # 25 ms
FRAME_SHIFT = 160  # 10 ms
N_FFT = 512  # the frame rounded up to a power of two
N_BINS = 80
LOW_HZ = 20.0
PREEMPHASIS = 0.97
LOG_FLOOR = float(np.finfo(np.float32).eps)

Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]


def mel(hz: Float64Array | float) -> Float64Array:
    """Kaldi's mel scale."""
    return np.asarray(1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0))


@cache
def mel_banks() -> Float32Array:
    """(N_BINS, N_FFT // 2 + 1) triangular filters, peak 1, on the mel scale from LOW_HZ to Nyquist."""
    low, high = mel(LOW_HZ), mel(SAMPLE_RATE / 2)
    step = (high - low) / (N_BINS + 1)
    left = low + step * np.arange(N_BINS)[:, None]
    centre, right = left + step, left + 2 * step
    # Kaldi leaves the Nyquist bin out of the filters; it keeps weight 0 here.
    fft_mel = mel(np.arange(N_FFT // 2) * SAMPLE_RATE / N_FFT)[None, :]
    rising = (fft_mel - left) / (centre - left)
    falling = (right - fft_mel) / (right - centre)
    banks = np.maximum(0.0, np.minimum(rising, falling))
    return np.pad(banks, ((0, 0), (0, 1))).astype(np.float32)


@cache
def povey_window() -> Float64Array:
    n = np.arange(FRAME_LENGTH)
    return np.asarray((0.5 - 0.5 * np.cos(2 * np.pi * n / (FRAME_LENGTH - 1))) ** 0.85)


def frame_count(n_samples: int) -> int:
    """Frames Kaldi makes from ``n_samples`` with snipped edges (0 below one frame's length)."""
    return 0 if n_samples < FRAME_LENGTH else 1 + (n_samples - FRAME_LENGTH) // FRAME_SHIFT


def log_fbank(samples: npt.NDArray[np.floating]) -> Float32Array:
    """(frames, N_BINS) Kaldi log mel filterbank of 16 kHz mono samples, not normalised."""
    wav = np.asarray(samples, dtype=np.float64).reshape(-1)
    count = frame_count(wav.size)
    if count == 0:
        return np.zeros((0, N_BINS), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(wav, FRAME_LENGTH)[::FRAME_SHIFT][:count]
    frames = frames - frames.mean(axis=1, keepdims=True)
    emphasised = np.empty_like(frames)
    emphasised[:, 1:] = frames[:, 1:] - PREEMPHASIS * frames[:, :-1]
    emphasised[:, 0] = frames[:, 0] * (1.0 - PREEMPHASIS)
    spectrum = np.fft.rfft(emphasised * povey_window(), n=N_FFT, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    energies = power @ mel_banks().T.astype(np.float64)
    out: Float32Array = np.log(np.maximum(energies, LOG_FLOOR)).astype(np.float32)
    return out


def centred_fbank(samples: npt.NDArray[np.floating]) -> Float32Array:
    """``log_fbank`` with each bin's mean over time removed: CAM++'s input."""
    feats = log_fbank(samples)
    if feats.shape[0]:
        feats -= feats.mean(axis=0, keepdims=True)
    return feats
