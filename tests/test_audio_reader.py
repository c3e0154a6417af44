"""Reading audio: the formats users have, and one clear error (file + fix) for each bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from beluga_voice.audio.reader import RawFormat, read_audio
from beluga_voice.errors import AudioFormatError


def tone(frames: int, channels: int = 1) -> np.ndarray:
    t = np.arange(frames) / 16000
    return np.repeat((0.3 * np.sin(2 * np.pi * 440 * t)).reshape(-1, 1), channels, axis=1)


def test_reads_a_real_speech_recording(data_dir: Path) -> None:
    audio = read_audio(data_dir / "pyannote" / "sample.wav")
    assert (audio.sample_rate, audio.channels) == (16000, 1)
    assert audio.duration == pytest.approx(30.0, abs=0.01)
    assert audio.source.endswith("sample.wav")
    assert 0.01 < float(np.sqrt(np.mean(audio.samples**2))) < 0.5, "speech, not silence or noise"


@pytest.mark.parametrize(
    ("name", "subtype"),
    [
        ("a.wav", "PCM_16"),
        ("b.wav", "PCM_24"),
        ("c.wav", "FLOAT"),
        ("d.wav", "PCM_U8"),
        ("e.flac", "PCM_16"),
        ("f.ogg", "VORBIS"),
    ],
)
def test_reads_wav_flac_and_ogg_of_any_sample_width(tmp_path: Path, name: str, subtype: str) -> None:
    path = tmp_path / name
    sf.write(path, tone(8000, 2), 16000, subtype=subtype)
    audio = read_audio(path)
    assert (audio.sample_rate, audio.channels, audio.frames) == (16000, 2, 8000)
    tolerance = 0.05 if subtype in ("VORBIS", "PCM_U8") else 1e-3
    np.testing.assert_allclose(audio.samples[100:-100], tone(8000, 2)[100:-100], atol=tolerance)


def test_reads_raw_pcm_with_a_declared_format(tmp_path: Path) -> None:
    path = tmp_path / "call.raw"
    path.write_bytes((np.array([0, 16384, -16384, 32767], dtype="<i2")).tobytes())
    audio = read_audio(path, raw=RawFormat(sample_rate=8000, channels=2))
    assert (audio.sample_rate, audio.channels, audio.frames) == (8000, 2, 2)
    assert audio.samples.tolist() == [[0.0, 0.5], [-0.5, 32767 / 32768]]


def test_reads_bytes_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, tone(1600), 16000)
    assert read_audio(path.read_bytes()).frames == 1600


def error_for(source: str | Path | bytes, raw: RawFormat | None = None) -> str:
    with pytest.raises(AudioFormatError) as info:
        read_audio(source, raw=raw)
    message = str(info.value)
    assert "\n" not in message, "one line"
    return message


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.wav"
    assert error_for(missing) == f"{missing}: no such file; check the path."


def test_directory(tmp_path: Path) -> None:
    assert error_for(tmp_path) == f"{tmp_path}: is a directory, not an audio file."


def test_empty_file_with_or_without_raw(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    expected = f"{empty}: is empty (0 bytes); there is no audio to transcribe."
    assert error_for(empty) == expected
    assert error_for(empty, RawFormat()) == expected


@pytest.mark.parametrize(
    "content", [b"RIFF\x24\x00\x00\x00WAVEfmt ", os.urandom(4000), b"ID3\x03" + b"\0" * 500]
)
def test_corrupt_or_foreign_files_name_the_file_and_the_fix(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(content)
    message = error_for(path)
    assert message.startswith(f"{path}: cannot read audio: not a readable WAV/FLAC/OGG file")
    assert f"ffmpeg -i {path} -ar 16000 -ac 1 out.wav" in message
    assert "--raw --sample-rate" in message


def test_a_header_without_samples(tmp_path: Path) -> None:
    path = tmp_path / "header.wav"
    sf.write(path, np.zeros((0, 1)), 16000)
    assert error_for(path) == f"{path}: contains no audio samples; there is nothing to transcribe."


@pytest.mark.parametrize("rate", [4000, 96000])
def test_sample_rate_outside_8_to_48_khz(tmp_path: Path, rate: int) -> None:
    path = tmp_path / f"r{rate}.wav"
    sf.write(path, np.zeros((rate // 10, 1)), rate)
    message = error_for(path)
    assert message.startswith(f"{path}: sample rate {rate} Hz is outside 8000-48000 Hz; resample")


def test_more_channels_than_supported(tmp_path: Path) -> None:
    path = tmp_path / "surround.wav"
    sf.write(path, tone(1600, 6), 16000)
    message = error_for(path)
    assert message.startswith(f"{path}: 6 channels is not supported (1 or 2 allowed); mix down")


def test_damaged_float_samples(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    samples = tone(1600).astype(np.float32)
    samples[10] = np.nan
    sf.write(path, samples, 16000, subtype="FLOAT")
    assert error_for(path) == f"{path}: contains NaN or infinite samples; the file is damaged."


def test_truncated_raw_pcm(tmp_path: Path) -> None:
    path = tmp_path / "cut.raw"
    path.write_bytes(b"\0" * 3201)
    message = error_for(path, RawFormat(16000, 1))
    assert message.startswith(f"{path}: 3201 bytes is not a whole number of 1-channel 16-bit frames")


def test_raw_pcm_with_an_unsupported_declared_format(tmp_path: Path) -> None:
    path = tmp_path / "a.raw"
    path.write_bytes(b"\0" * 3200)
    assert "sample rate 100000 Hz is outside" in error_for(path, RawFormat(100000, 1))
    assert "3 channels is not supported" in error_for(path, RawFormat(16000, 3))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.wav"
    sf.write(path, tone(1600), 16000)
    path.chmod(0)
    assert error_for(path) == f"{path}: permission denied; check the file's permissions."
