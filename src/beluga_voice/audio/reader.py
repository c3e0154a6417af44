"""Reading audio from files, stdin and raw PCM, with one clear error per bad input."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from beluga_voice.audio.pcm import Audio, check_channels, check_sample_rate
from beluga_voice.errors import AudioFormatError


@dataclass(frozen=True)
class RawFormat:
    """How to read headerless s16le PCM: its rate and channel count."""

    sample_rate: int = 16000
    channels: int = 1


def read_audio(source: str | Path | bytes, raw: RawFormat | None = None) -> Audio:
    """Read WAV/FLAC/OGG (or raw s16le with ``raw``) from a path, ``"-"`` for stdin, or bytes."""
    name, data = _load(source)
    return decode_audio(data, name, raw)


def decode_audio(data: bytes, name: str = "<bytes>", raw: RawFormat | None = None) -> Audio:
    """Decode a whole WAV/FLAC/OGG recording (or raw s16le with ``raw``) held in memory."""
    if not data:
        raise AudioFormatError(f"{name}: is empty (0 bytes); there is no audio to transcribe.")
    if raw is not None:
        return Audio.from_pcm16(data, raw.sample_rate, raw.channels, name)
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioFormatError(
            f"{name}: cannot read audio: not a readable WAV/FLAC/OGG file (corrupt, truncated, or another "
            f"format). Convert it with `ffmpeg -i {name} -ar 16000 -ac 1 out.wav`, or if it is headerless "
            "s16le PCM declare its format (--raw --sample-rate N, or RawFormat in Python)."
        ) from exc
    if samples.shape[0] == 0:
        raise AudioFormatError(f"{name}: contains no audio samples; there is nothing to transcribe.")
    check_sample_rate(int(rate), name)
    check_channels(int(samples.shape[1]), name)
    if not np.all(np.isfinite(samples)):
        raise AudioFormatError(f"{name}: contains NaN or infinite samples; the file is damaged.")
    return Audio(np.ascontiguousarray(samples, dtype=np.float32), int(rate), name)


def _load(source: str | Path | bytes) -> tuple[str, bytes]:
    if isinstance(source, bytes):
        return "<bytes>", source
    if str(source) == "-":
        return "<stdin>", sys.stdin.buffer.read()
    path = Path(source)
    try:
        return str(path), path.read_bytes()
    except FileNotFoundError:
        raise AudioFormatError(f"{path}: no such file; check the path.") from None
    except IsADirectoryError:
        raise AudioFormatError(f"{path}: is a directory, not an audio file.") from None
    except PermissionError:
        raise AudioFormatError(f"{path}: permission denied; check the file's permissions.") from None
