"""The replay of a compressed stream, sans I/O: what a new connection is sent is a valid stream that
decodes to the audio from the replay's origin on, and it holds no more than it must."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from beluga_voice.audio import Audio
from beluga_voice.audio.compressed import CompressedDecoder
from beluga_voice.errors import AudioFormatError
from beluga_voice.providers.aws_transcribe.media_replay import MediaReplay, Replay
from beluga_voice.stt.model import TranscriptResult

RATE = 16000
SUBTYPES = {"flac": ("FLAC", "PCM_16"), "ogg-opus": ("OGG", "OPUS")}


@pytest.fixture(scope="module")
def call(data_dir: Path) -> np.ndarray:
    samples: np.ndarray = sf.read(data_dir / "pyannote/sample.wav", dtype="float32")[0]
    return samples


ENCODED: dict[str, bytes] = {}


def encode(samples: np.ndarray, encoding: str) -> bytes:
    """The call as an encoder writes it (encoded once per module: Opus encoding takes a while)."""
    if encoding in ENCODED:
        return ENCODED[encoding]
    fmt, subtype = SUBTYPES[encoding]
    out = io.BytesIO()
    sf.write(
        out, np.frombuffer(Audio(samples[:, None], RATE).to_pcm16(), "<i2"), RATE, format=fmt, subtype=subtype
    )
    ENCODED[encoding] = out.getvalue()
    return ENCODED[encoding]


def final(end: float) -> TranscriptResult:
    return TranscriptResult("r", False, max(0.0, end - 2), end, "words")


def sent_until(replay: MediaReplay, data: bytes, cut: int, seed: int = 1) -> None:
    rng, at = random.Random(seed), 0
    while at < cut:
        size = min(rng.randint(1, 3000), cut - at)
        replay.record(data[at : at + size])
        at += size


def decode(encoding: str, data: bytes) -> np.ndarray:
    decoder = CompressedDecoder(encoding, RATE, 1)
    return np.concatenate([decoder.feed(data), decoder.finish()])[:, 0]


def reconnect(replay: MediaReplay, data: bytes, cut: int, answered_until: float) -> tuple[Replay, np.ndarray]:
    """Send ``data[:cut]``, answer it up to ``answered_until``, reconnect: what the new connection decodes."""
    sent_until(replay, data, cut)
    replay.answered([final(answered_until)])
    started = replay.begin(reconnect=True)
    return started, decode(replay.encoding, b"".join(started.chunks) + data[cut:])


@pytest.mark.parametrize("cut_share", [0.3, 0.55, 0.9])
def test_a_flac_replay_decodes_to_the_exact_audio_from_its_origin(call: np.ndarray, cut_share: float) -> None:
    data = encode(call, "flac")
    answered = len(call) / RATE * cut_share - 4.0
    replay = MediaReplay("flac", replay_seconds=30.0, overlap_seconds=1.0)
    started, audio = reconnect(replay, data, int(len(data) * cut_share), answered)
    frame = 4096 / RATE  # libFLAC's block size
    assert answered - 1.0 - frame < started.origin <= answered - 1.0  # the overlap, to a frame boundary
    first = round(started.origin * RATE)
    assert np.array_equal(audio, np.round(call[first:] * 32768) / 32768)
    assert replay.lost_seconds == 0


def test_an_opus_replay_decodes_to_the_audio_from_its_origin(call: np.ndarray) -> None:
    data = encode(call, "ogg-opus")
    replay = MediaReplay("ogg-opus", replay_seconds=30.0, overlap_seconds=1.0)
    started, audio = reconnect(replay, data, len(data) * 2 // 3, answered_until=15.0)
    assert 12.5 < started.origin <= 15.0 - 1.0 - 0.08  # overlap and pre-roll, to a page (~1 s) boundary
    original = call[round(started.origin * RATE) :]
    assert abs(len(audio) - len(original)) < 0.02 * RATE
    n = min(len(audio), len(original)) - 4
    best = max(np.corrcoef(audio[lag : lag + n], original[:n])[0, 1] for lag in range(4))
    assert best > 0.9  # the same speech, on the same timeline (a shift of 0.25 ms would be 4 samples)


@pytest.mark.parametrize("encoding", ["flac", "ogg-opus"])
def test_without_finals_the_replay_starts_at_the_beginning(call: np.ndarray, encoding: str) -> None:
    data = encode(call, encoding)
    replay = MediaReplay(encoding, replay_seconds=30.0)
    sent_until(replay, data, len(data) // 4)
    started = replay.begin(reconnect=True)
    assert started.origin == 0.0
    assert b"".join(started.chunks).startswith(b"fLaC" if encoding == "flac" else b"OggS")


def test_the_buffer_is_bounded_and_what_it_dropped_is_counted_lost(call: np.ndarray) -> None:
    data = encode(call, "flac")
    replay = MediaReplay("flac", replay_seconds=5.0)
    sent_until(replay, data, len(data))
    started = replay.begin(reconnect=True)
    assert started.seconds <= 5.0 and started.origin >= len(call) / RATE - 5.5
    assert replay.lost_seconds == pytest.approx(started.origin)
    assert sum(map(len, started.chunks)) < len(data) / 4


def test_the_first_connection_sends_nothing_again(call: np.ndarray) -> None:
    replay = MediaReplay("flac", replay_seconds=30.0)
    sent_until(replay, encode(call, "flac"), 10_000)
    assert replay.begin(reconnect=False).chunks == []


def test_a_stream_that_cannot_be_framed_cannot_be_replayed() -> None:
    replay = MediaReplay("ogg-opus", replay_seconds=30.0)
    replay.record(b"ID3\x04" + bytes(100))  # an MP3 sent as ogg-opus: the service refuses it as well
    with pytest.raises(AudioFormatError, match=r"cannot replay the ogg-opus stream.*'OggS'"):
        replay.begin(reconnect=True)
