"""The speaker encoder's input: a 40-band mel power spectrogram, computed with numpy.

The pretrained encoder was trained on librosa's defaults, so this reproduces them: 16 kHz audio,
25 ms periodic Hann window (n_fft 400), 10 ms hop, centred frames with reflect padding, power
spectrum (no log), Slaney-style mel scale and area-normalised triangular filters from 0 to 8 kHz.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40

Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]

# Slaney mel scale: linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz: Float64Array) -> Float64Array:
    mel = hz / _F_SP
    above = hz >= _MIN_LOG_HZ
    mel[above] = _MIN_LOG_MEL + np.log(hz[above] / _MIN_LOG_HZ) / _LOG_STEP
    return mel


def mel_to_hz(mel: Float64Array) -> Float64Array:
    hz = mel * _F_SP
    above = mel >= _MIN_LOG_MEL
    hz[above] = _MIN_LOG_HZ * np.exp(_LOG_STEP * (mel[above] - _MIN_LOG_MEL))
    return hz


@cache
def mel_filterbank() -> Float32Array:
    """(N_MELS, N_FFT // 2 + 1) triangular filters with unit area (Slaney normalisation)."""
    fft_freqs = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges_mel = np.linspace(
        hz_to_mel(np.array([0.0]))[0], hz_to_mel(np.array([SAMPLE_RATE / 2]))[0], N_MELS + 2
    )
    edges = mel_to_hz(edges_mel)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


@cache
def _window() -> Float64Array:
    # Periodic Hann (the spectral-analysis convention), length N_FFT.
    n = np.arange(N_FFT)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)


def mel_spectrogram(samples: npt.NDArray[np.floating]) -> Float32Array:
    """(frames, N_MELS) mel power spectrogram of 16 kHz mono samples; one frame per 10 ms."""
    wav = np.asarray(samples, dtype=np.float64).reshape(-1)
    pad = N_FFT // 2
    if wav.size <= pad:
        wav = np.pad(wav, (0, pad + 1 - wav.size))
    padded = np.pad(wav, (pad, pad), mode="reflect")
    count = 1 + (padded.size - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:count]
    power = np.abs(np.fft.rfft(frames * _window(), axis=1)) ** 2
    mel: Float32Array = (power @ mel_filterbank().T.astype(np.float64)).astype(np.float32)
    return mel
