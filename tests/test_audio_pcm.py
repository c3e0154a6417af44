"""Conversions a provider relies on: resampling keeps pitch and level, mixdown, 16-bit PCM."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest

from beluga_voice.audio.pcm import Audio, float_to_pcm16, pcm16_to_float
from beluga_voice.errors import AudioFormatError


def sine(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> npt.NDArray[np.float32]:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def mono(samples: npt.NDArray[np.float32], rate: int) -> Audio:
    return Audio(samples.reshape(-1, 1), rate, "test")


def dominant_frequency(samples: npt.NDArray[np.float32], rate: int) -> float:
    """Peak of a Hann-windowed spectrum, refined by parabolic interpolation (sub-bin accuracy)."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return float((k + offset) * rate / len(samples))


def rms(samples: npt.NDArray[np.float32]) -> float:
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64)))))


@pytest.mark.parametrize(
    ("source_rate", "freq"),
    [(44100, 1000.0), (44100, 3150.0), (8000, 440.0), (8000, 2500.0), (48000, 7000.0)],
)
def test_resampling_to_16k_keeps_a_sines_frequency_and_level(source_rate: int, freq: float) -> None:
    audio = mono(sine(freq, source_rate), source_rate).resample(16000)
    assert audio.sample_rate == 16000
    assert audio.frames == pytest.approx(16000, abs=2), "duration is kept"
    # Ignore the filter's edges: what matters is the steady tone.
    middle = audio.samples[1600:-1600, 0]
    assert dominant_frequency(middle, 16000) == pytest.approx(freq, abs=0.5)
    assert rms(middle) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_downsampling_removes_tones_above_the_new_nyquist_instead_of_aliasing_them() -> None:
    # 10 kHz cannot exist at 16 kHz; without a proper filter it would fold back to 6 kHz.
    audio = mono(sine(10000.0, 44100), 44100).resample(16000)
    assert rms(audio.samples[1600:-1600, 0]) < 0.5 / np.sqrt(2) * 0.01, "at least 40 dB down"


def test_resampling_stereo_keeps_both_channels_apart() -> None:
    stereo = np.stack([sine(500.0, 44100), sine(1500.0, 44100, amplitude=0.25)], axis=1)
    audio = Audio(stereo, 44100, "test").resample(16000)
    assert audio.channels == 2
    assert dominant_frequency(audio.samples[1600:-1600, 0], 16000) == pytest.approx(500.0, abs=0.5)
    assert dominant_frequency(audio.samples[1600:-1600, 1], 16000) == pytest.approx(1500.0, abs=0.5)
    assert rms(audio.samples[1600:-1600, 1]) == pytest.approx(0.25 / np.sqrt(2), rel=0.01)


def test_same_rate_resampling_is_a_no_op() -> None:
    audio = mono(sine(440.0, 16000), 16000)
    assert audio.resample(16000) is audio


def test_resampling_to_an_unsupported_rate_is_refused() -> None:
    with pytest.raises(AudioFormatError, match="sample rate 96000 Hz is outside 8000-48000 Hz"):
        mono(sine(440.0, 16000), 16000).resample(96000)


def test_mono_mixdown_averages_channels() -> None:
    tone = sine(440.0, 16000)
    same = Audio(np.stack([tone, tone], axis=1), 16000).to_mono()
    assert same.channels == 1
    np.testing.assert_allclose(same.samples[:, 0], tone, atol=1e-7)  # a centred voice keeps its level
    left_only = Audio(np.stack([tone, np.zeros_like(tone)], axis=1), 16000).to_mono()
    np.testing.assert_allclose(left_only.samples[:, 0], tone / 2, atol=1e-7)
    assert same.to_mono() is same


def test_convert_mixes_down_and_resamples_in_one_step() -> None:
    stereo = np.stack([sine(1000.0, 44100), sine(1000.0, 44100)], axis=1)
    audio = Audio(stereo, 44100, "call.wav").convert(16000, 1)
    assert (audio.sample_rate, audio.channels) == (16000, 1)
    assert dominant_frequency(audio.samples[1600:-1600, 0], 16000) == pytest.approx(1000.0, abs=0.5)
    kept = Audio(stereo, 44100, "call.wav").convert(16000, 2)
    assert kept.channels == 2


def test_convert_cannot_invent_a_second_channel() -> None:
    with pytest.raises(AudioFormatError, match=r"call\.wav: has 1 channel\(s\) but 2 were requested"):
        Audio(np.zeros((10, 1), np.float32), 16000, "call.wav").convert(16000, 2)


def test_pcm16_is_little_endian_and_clips_instead_of_wrapping() -> None:
    samples = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -1.5, 1e9], dtype=np.float32)
    values = np.frombuffer(float_to_pcm16(samples), dtype="<i2").tolist()
    assert values == [0, 16384, -16384, 32767, -32768, 32767, -32768, 32767]
    assert float_to_pcm16(np.array([0.5], dtype=np.float32)) == b"\x00\x40"


def test_pcm16_round_trip_is_within_one_step() -> None:
    samples = sine(440.0, 16000, amplitude=0.9)
    back = pcm16_to_float(float_to_pcm16(samples))
    assert back.dtype == np.float32
    assert np.max(np.abs(back - samples)) <= 0.5 / 32768 + 1e-9


def test_stereo_pcm16_is_interleaved() -> None:
    audio = Audio(np.array([[0.5, -0.5], [0.25, -0.25]], dtype=np.float32), 16000)
    pcm = audio.to_pcm16()
    assert np.frombuffer(pcm, "<i2").tolist() == [16384, -16384, 8192, -8192]
    again = Audio.from_pcm16(pcm, 16000, 2)
    np.testing.assert_array_equal(again.samples, audio.samples)


def test_pcm16_input_must_be_whole_frames() -> None:
    with pytest.raises(
        AudioFormatError, match=r"mic: 5 bytes is not a whole number of 1-channel 16-bit frames"
    ):
        Audio.from_pcm16(b"\0" * 5, 16000, 1, "mic")
    with pytest.raises(AudioFormatError, match="6 bytes is not a whole number of 2-channel"):
        Audio.from_pcm16(b"\0" * 6, 16000, 2)


def test_pcm16_input_declares_a_supported_format() -> None:
    with pytest.raises(AudioFormatError, match="sample rate 4000 Hz is outside"):
        Audio.from_pcm16(b"\0\0", 4000)
    with pytest.raises(AudioFormatError, match="3 channels is not supported"):
        Audio.from_pcm16(b"\0" * 6, 16000, 3)


def test_stream_resampler_pieces_join_without_seams() -> None:
    """A live 8 kHz stream cut into odd-sized pieces resamples to what the whole signal gives."""
    from beluga_voice.audio import StreamResampler

    rate = 8000
    t = np.arange(rate * 2) / rate
    signal = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32).reshape(-1, 1)
    whole = Audio(signal, rate).resample(16000).samples[:, 0]

    resampler = StreamResampler(rate, 16000)
    pieces, start = [], 0
    for size in itertools.cycle([37, 160, 1, 999, 480]):
        if start >= len(signal):
            break
        pieces.append(resampler.process(signal[start : start + size]))
        start += size
    pieces.append(resampler.flush())
    streamed = np.concatenate(pieces)[:, 0]

    assert abs(len(streamed) - len(whole)) <= 2
    n = min(len(streamed), len(whole))
    # Away from the two ends, piecewise output matches the one-shot resample sample for sample.
    assert np.max(np.abs(streamed[200 : n - 200] - whole[200 : n - 200])) < 1e-3
