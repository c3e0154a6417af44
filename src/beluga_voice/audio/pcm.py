"""In-memory audio and the conversions providers need: mono, resampling, 16-bit PCM."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import soxr

from beluga_voice.errors import AudioFormatError

MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000
MAX_CHANNELS = 2
PCM_SAMPLE_WIDTH = 2  # bytes per sample of s16le

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Audio:
    """Float32 samples in [-1, 1], shape (frames, channels), with their rate and where they came from."""

    samples: FloatArray
    sample_rate: int
    source: str = "<audio>"

    def __post_init__(self) -> None:
        if self.samples.ndim != 2:
            raise ValueError("Audio.samples must have shape (frames, channels)")

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def to_mono(self) -> Audio:
        """Average the channels (a mixdown that keeps the level of correlated speech)."""
        if self.channels == 1:
            return self
        mixed = self.samples.mean(axis=1, keepdims=True, dtype=np.float32)
        return Audio(mixed, self.sample_rate, self.source)

    def resample(self, sample_rate: int) -> Audio:
        """Resample with soxr (high quality); a no-op at the same rate."""
        check_sample_rate(sample_rate, self.source)
        if sample_rate == self.sample_rate:
            return self
        out = soxr.resample(self.samples, self.sample_rate, sample_rate, quality="HQ")
        return Audio(
            np.ascontiguousarray(out, dtype=np.float32).reshape(-1, self.channels), sample_rate, self.source
        )

    def to_pcm16(self) -> bytes:
        """Interleaved signed 16-bit little-endian PCM, clipped to the valid range."""
        return float_to_pcm16(self.samples)

    def convert(self, sample_rate: int, channels: int = 1) -> Audio:
        """What a provider asks for: the given rate and channel count (1 = mixdown, 2 = keep both)."""
        audio = self
        if channels == 1:
            audio = audio.to_mono()
        elif channels != audio.channels:
            raise AudioFormatError(
                f"{self.source}: has {self.channels} channel(s) but {channels} were requested; "
                "channel identification needs a two-channel recording."
            )
        return audio.resample(sample_rate)

    @classmethod
    def from_pcm16(cls, data: bytes, sample_rate: int, channels: int = 1, source: str = "<pcm>") -> Audio:
        """Audio from raw interleaved s16le bytes."""
        check_sample_rate(sample_rate, source)
        check_channels(channels, source)
        frame_bytes = PCM_SAMPLE_WIDTH * channels
        if len(data) % frame_bytes:
            raise AudioFormatError(
                f"{source}: {len(data)} bytes is not a whole number of {channels}-channel 16-bit frames; "
                "the input is truncated or not s16le PCM."
            )
        return cls(pcm16_to_float(data).reshape(-1, channels), sample_rate, source)


class StreamResampler:
    """Resamples a live stream piece by piece with no seams at piece edges (soxr keeps filter state)."""

    def __init__(self, in_rate: int, out_rate: int, channels: int = 1) -> None:
        check_sample_rate(in_rate)
        check_sample_rate(out_rate)
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.channels = channels
        self._stream = soxr.ResampleStream(in_rate, out_rate, channels, dtype="float32", quality="HQ")

    def process(self, samples: FloatArray, last: bool = False) -> FloatArray:
        """Resampled samples for this piece (shape (frames, channels)); ``last`` flushes the filter."""
        out = self._stream.resample_chunk(np.ascontiguousarray(samples, dtype=np.float32), last=last)
        return np.asarray(out, dtype=np.float32).reshape(-1, self.channels)

    def flush(self) -> FloatArray:
        """The samples still held in the filter at the end of the stream."""
        return self.process(np.zeros((0, self.channels), dtype=np.float32), last=True)


def float_to_pcm16(samples: npt.NDArray[np.floating]) -> bytes:
    """Float samples in [-1, 1] to s16le bytes (interleaved if 2-D)."""
    scaled = np.clip(np.asarray(samples, dtype=np.float32) * 32768.0, -32768.0, 32767.0)
    out: bytes = np.rint(scaled).astype("<i2").tobytes()
    return out


def pcm16_to_float(data: bytes) -> FloatArray:
    """s16le bytes to float32 samples in [-1, 1)."""
    return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)


def check_sample_rate(sample_rate: int, source: str = "<audio>") -> None:
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise AudioFormatError(
            f"{source}: sample rate {sample_rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz; "
            f"resample the audio (e.g. `sox in.wav -r 16000 out.wav`) or declare the right rate."
        )


def check_channels(channels: int, source: str = "<audio>") -> None:
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioFormatError(
            f"{source}: {channels} channels is not supported (1 or 2 allowed); "
            "mix down first (e.g. `sox in.wav -c 1 out.wav`)."
        )
