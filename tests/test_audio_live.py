"""Live audio sources: a WAV stream parsed as its bytes arrive, converted piece by piece exactly as a
whole recording would be, and stdin read on a thread that a silent writer cannot block."""

from __future__ import annotations

import asyncio
import io
import os
import random
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from beluga_voice.audio.live import (
    LiveConverter,
    LiveStream,
    PcmFormat,
    PipeReader,
    WavHeaderParser,
)
from beluga_voice.audio.reader import RawFormat, decode_audio, read_audio
from beluga_voice.errors import AudioFormatError

SPEECH = "librivox/sense_and_sensibility_01_austen_64kb-0930.wav"


async def pieces_of(data: bytes, seed: int = 0) -> AsyncIterator[bytes]:
    """``data`` in irregular pieces (1 byte to 5 kB), as a pipe delivers it."""
    rng = random.Random(seed)
    offset = 0
    while offset < len(data):
        size = rng.choice([1, 3, 7, 44, 333, 1024, 4999])
        yield data[offset : offset + size]
        offset += size
        await asyncio.sleep(0)


async def collect(stream: LiveStream, rate: int = 16000, channels: int = 1) -> list[bytes]:
    return [chunk async for chunk in stream.chunks(rate, channels)]


def wav_bytes(samples: np.ndarray, rate: int, subtype: str, fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, subtype=subtype, format=fmt)
    return buffer.getvalue()


def with_placeholder_sizes(wav: bytes, size: int) -> bytes:
    """What a streaming writer sends: the same header with unknown RIFF and data sizes."""
    data_at = wav.index(b"data")
    out = bytearray(wav)
    out[4:8] = struct.pack("<I", size)
    out[data_at + 4 : data_at + 8] = struct.pack("<I", size)
    return bytes(out)


@pytest.fixture(scope="module")
def speech(data_dir: Path) -> np.ndarray:
    return read_audio(data_dir / SPEECH).samples[:, 0]


@pytest.mark.parametrize("placeholder", [0, 0xFFFFFFFF, 0x7FFFFF00])
async def test_a_streaming_writers_wav_gives_the_same_pcm_as_the_file(
    speech: np.ndarray, placeholder: int
) -> None:
    wav = wav_bytes(speech, 16000, "PCM_16")
    stream = LiveStream(pieces_of(with_placeholder_sizes(wav, placeholder)), "<stdin>")
    assert await stream.start() == PcmFormat(16000, 1)
    chunks = await collect(stream)
    assert b"".join(chunks) == decode_audio(wav).to_pcm16(), "every sample, unchanged, nothing added"
    assert {len(c) for c in chunks[:-1]} == {3200}, "uniform 100 ms chunks"
    assert stream.seconds == pytest.approx(len(speech) / 16000)
    assert stream.ending_error() is None


@pytest.mark.parametrize(
    ("subtype", "rate", "channels", "container"),
    [
        ("PCM_16", 44100, 2, "WAV"),
        ("PCM_24", 48000, 1, "WAV"),
        ("FLOAT", 22050, 2, "WAV"),  # with a 'fact' chunk before the data
        ("PCM_U8", 8000, 1, "WAV"),
        ("PCM_32", 16000, 2, "WAV"),
        ("PCM_24", 32000, 2, "WAVEX"),  # WAVE_FORMAT_EXTENSIBLE, as ffmpeg writes beyond 16-bit stereo
        ("DOUBLE", 11025, 1, "WAVEX"),
    ],
)
async def test_any_wav_encoding_converts_piece_by_piece_like_the_whole_recording(
    speech: np.ndarray, subtype: str, rate: int, channels: int, container: str
) -> None:
    import soxr

    source = np.repeat(soxr.resample(speech, 16000, rate)[:, None], channels, axis=1) * 0.8
    wav = wav_bytes(source, rate, subtype, container)
    if container == "WAVEX":
        assert wav[20:22] == b"\xfe\xff", "the extensible format tag"
    stream = LiveStream(pieces_of(with_placeholder_sizes(wav, 0xFFFFFFFF)), "<stdin>")
    live = np.frombuffer(b"".join(await collect(stream)), "<i2").astype(np.float32) / 32768
    whole = decode_audio(wav).convert(16000, 1).samples[:, 0]
    assert abs(len(live) - len(whole)) <= 2
    n = min(len(live), len(whole))
    error = np.sqrt(np.mean((live[:n] - whole[:n]) ** 2)) / np.sqrt(np.mean(whole[:n] ** 2))
    tolerance = 0.02 if subtype == "PCM_U8" else 1e-3  # 8-bit audio is coarse whichever way it is cut
    assert error < tolerance, f"piecewise conversion differs from the whole by {error:.2%}"


async def test_a_declared_data_size_ends_the_audio_before_trailing_metadata(speech: np.ndarray) -> None:
    wav = wav_bytes(speech[:16000], 16000, "PCM_16")
    trailing = b"LIST" + struct.pack("<I", 8) + b"INFOjunk"
    chunks = await collect(LiveStream(pieces_of(wav + trailing), "<stdin>"))
    assert b"".join(chunks) == decode_audio(wav).to_pcm16()


async def test_flac_on_stdin_is_decoded_at_its_end(speech: np.ndarray) -> None:
    flac = wav_bytes(speech, 16000, "PCM_16", fmt="FLAC")
    stream = LiveStream(pieces_of(flac), "<stdin>")
    assert await stream.start() is None
    assert b"".join(await collect(stream)) == decode_audio(flac).to_pcm16()
    assert stream.seconds == pytest.approx(len(speech) / 16000)


async def test_raw_pcm_needs_no_header_and_reports_a_cut_frame(speech: np.ndarray) -> None:
    pcm = decode_audio(wav_bytes(speech, 16000, "PCM_16")).to_pcm16()
    stereo = np.frombuffer(pcm, "<i2").repeat(2).tobytes()
    stream = LiveStream(pieces_of(stereo + b"\x07"), "<stdin>", PcmFormat(16000, 2))
    assert b"".join(await collect(stream)) == pcm, "the two equal channels mix down to the same voice"
    error = stream.ending_error()
    assert error is not None
    assert str(error).startswith("<stdin>: ended 1 byte(s) into a frame")
    assert "2-channel 16-bit frames" in str(error)
    assert decode_audio(pcm, "<stdin>", RawFormat(16000, 1)).frames == len(pcm) // 2


async def test_a_stream_that_ends_before_any_audio_says_so() -> None:
    stream = LiveStream(pieces_of(b""), "<stdin>", PcmFormat(16000, 1))
    assert await collect(stream) == []
    error = stream.ending_error()
    assert error is not None and "ended before any audio arrived" in str(error)


def fmt_chunk(tag: int, channels: int, rate: int, bits: int) -> bytes:
    align = channels * bits // 8
    body = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    return b"fmt " + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (b"", "<stdin>: is empty (0 bytes)"),
        (b"ID3\x04" + bytes(40), "<stdin>: is not a WAV stream (it starts with b'ID3\\x04"),
        (
            b"RIFF\0\0\0\0AVI LIST",
            "<stdin>: is not a WAV stream (it starts with b'RIFF\\x00\\x00\\x00\\x00AVI '",
        ),
        (b"RIFF\xff\xff\xff\xffWAVEfmt ", "<stdin>: the input ended after 16 bytes, inside the WAV header"),
        (
            b"RIFF\xff\xff\xff\xffWAVE" + fmt_chunk(1, 1, 96000, 16) + b"data\0\0\0\0",
            "<stdin>: sample rate 96000 Hz is outside 8000-48000 Hz",
        ),
        (
            b"RIFF\xff\xff\xff\xffWAVE" + fmt_chunk(1, 6, 48000, 16) + b"data\0\0\0\0",
            "<stdin>: 6 channels is not supported (1 or 2 allowed)",
        ),
        (
            b"RIFF\xff\xff\xff\xffWAVE" + fmt_chunk(7, 1, 8000, 8) + b"data\0\0\0\0",
            "<stdin>: WAV encoding 0x0007 with 8-bit samples in 1-byte frames cannot be read; send 16-bit PCM",
        ),
        (b"RIFF\xff\xff\xff\xffWAVEdata\0\0\0\0", "audio data before its 'fmt ' chunk"),
    ],
)
async def test_a_bad_stream_fails_at_its_header_with_one_line(stream: bytes, message: str) -> None:
    with pytest.raises(AudioFormatError) as info:
        await LiveStream(pieces_of(stream), "<stdin>").start()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_the_header_parser_needs_only_the_header_bytes() -> None:
    header = b"RIFF\xff\xff\xff\xffWAVE" + fmt_chunk(1, 2, 44100, 16) + b"data\xff\xff\xff\xff"
    parser = WavHeaderParser()
    assert [parser.feed(header[i : i + 1]) for i in range(len(header) - 1)] == [None] * (len(header) - 1)
    found = parser.feed(header[-1:] + b"\x01\x02")
    assert found is not None
    assert found.format == PcmFormat(44100, 2) and found.data_size is None
    assert parser.rest == b"\x01\x02"


def test_the_converter_keeps_a_split_frame_for_the_next_piece() -> None:
    converter = LiveConverter(PcmFormat(16000, 2), 16000, 1)
    frame = struct.pack("<hh", 1000, 3000)
    assert converter.feed(frame[:3]) == b"" and converter.leftover == 3
    assert converter.feed(frame[3:]) == struct.pack("<h", 2000)
    assert converter.leftover == 0 and converter.frames == 1


def test_a_mono_recording_cannot_feed_two_channel_identification() -> None:
    with pytest.raises(AudioFormatError, match="channel identification needs a two-channel recording"):
        LiveConverter(PcmFormat(16000, 1), 16000, 2, "<stdin>")


async def test_stdin_pieces_arrive_while_the_writer_is_still_writing_and_stop_ends_at_once() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb", buffering=0) as stdin:
        reader = PipeReader(stdin)
        pieces = aiter(reader)
        os.write(write_end, b"first")
        assert await asyncio.wait_for(anext(pieces), 10) == b"first", "no waiting for the end of input"
        os.write(write_end, b"second")
        assert await asyncio.wait_for(anext(pieces), 10) == b"second"
        reader.stop()  # the writer stays silent and keeps the pipe open: stop must not wait for it
        assert [p async for p in pieces] == []
    os.close(write_end)


async def test_stdin_ends_at_end_of_input() -> None:
    reader = PipeReader(io.BytesIO(b"abc" * 100))
    assert b"".join([piece async for piece in reader]) == b"abc" * 100
