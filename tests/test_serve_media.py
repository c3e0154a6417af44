"""`beluga serve` takes the service's three media encodings: flac and ogg-opus decoded as they arrive.

Real speech encoded in the test with soundfile (libsndfile's FLAC and Opus encoders), streamed
over real sockets through the AWS provider and as raw protocol frames cut at arbitrary bytes.
"""

from __future__ import annotations

import asyncio
import functools
import io
import itertools
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from beluga_voice.audio import Audio
from beluga_voice.audio.compressed import CompressedDecoder, FlacFramer, OggFramer
from beluga_voice.errors import AudioFormatError, ServiceError
from beluga_voice.providers.aws_transcribe import AWSTranscribeSTT, ReconnectPolicy
from beluga_voice.providers.aws_transcribe.messages import audio_event, end_of_stream
from beluga_voice.server import (
    FaultPlan,
    LocalEngineFactory,
    ServerConfig,
    TranscribeServer,
    echo_engine,
    serve_in_background,
)
from beluga_voice.server.testing import open_stream, read_reply
from beluga_voice.stt.model import Word
from beluga_voice.stt.wordcheck import normalize, stable_words
from reconnect_kit import RATE, Run, aws, serving, two_utterances
from reconnect_kit import assert_each_word_once as each_word_once

SUBTYPES = {"flac": ("FLAC", "PCM_16"), "ogg-opus": ("OGG", "OPUS")}


@functools.lru_cache(maxsize=8)
def encode(pcm: bytes, encoding: str, rate: int = RATE, channels: int = 1) -> bytes:
    """``pcm`` (s16le) as a FLAC or Ogg Opus stream, as an application's encoder writes it."""
    fmt, subtype = SUBTYPES[encoding]
    out = io.BytesIO()
    samples = np.frombuffer(pcm, "<i2").reshape(-1, channels)
    sf.write(out, samples, rate, format=fmt, subtype=subtype)
    return out.getvalue()


def pieces(data: bytes, seed: int, largest: int = 4000) -> Iterator[bytes]:
    """``data`` cut at random byte boundaries (1 byte to ``largest``)."""
    rng = random.Random(seed)
    at = 0
    while at < len(data):
        size = rng.randint(1, largest)
        yield data[at : at + size]
        at += size


def word_error_rate(reference: list[str], hypothesis: list[str]) -> float:
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp in enumerate(hypothesis, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp))
        previous = current
    return previous[-1] / max(len(reference), 1)


def words_of(texts: list[str]) -> list[str]:
    return [normalize(w) for text in texts for w in text.split() if normalize(w)]


@pytest.fixture(scope="module")
def clip(data_dir: Path) -> bytes:
    return two_utterances(data_dir)


@pytest.fixture(scope="module")
def call(data_dir: Path) -> bytes:
    return Audio(sf.read(data_dir / "pyannote/sample.wav", dtype="float32")[0][:, None], RATE).to_pcm16()


# --- the decoder, sans I/O --------------------------------------------------------------------------


def decode(encoding: str, data: bytes, seed: int, rate: int = RATE, largest: int = 4000) -> np.ndarray:
    decoder = CompressedDecoder(encoding, rate, 1)
    out = [decoder.feed(piece) for piece in pieces(data, seed, largest)]
    return np.concatenate([*out, decoder.finish()])[:, 0]


def test_flac_cut_anywhere_decodes_to_the_exact_samples(call: bytes) -> None:
    flac = encode(call, "flac")
    original = np.frombuffer(call, "<i2").astype(np.float32) / 32768
    for seed in range(3):
        assert np.array_equal(decode("flac", flac, seed), original)


def test_opus_cut_anywhere_decodes_seamlessly(clip: bytes) -> None:
    """One decoder state for the whole stream: any cut gives the samples of the uncut stream, which
    are libsndfile's whole-file decode (up to a sample of resampler delay)."""
    opus = encode(clip, "ogg-opus")
    uncut = decode("ogg-opus", opus, seed=0, largest=len(opus))
    assert np.allclose(decode("ogg-opus", opus, seed=4), uncut, atol=1e-4)
    whole, _ = sf.read(io.BytesIO(opus), dtype="float32")
    assert abs(len(uncut) - len(whole)) < RATE * 0.01  # within 10 ms (codec padding at the end)
    n = min(len(uncut), len(whole)) - 2
    best = max(np.corrcoef(uncut[lag : lag + n], whole[:n])[0, 1] for lag in range(3))
    assert best > 0.98
    at48 = decode("ogg-opus", opus, seed=5, rate=48000)
    assert abs(len(at48) / 48000 - len(uncut) / RATE) < 0.01


@pytest.mark.parametrize("encoding", ["flac", "ogg-opus"])
def test_framers_hold_one_frame_or_page_at_most(call: bytes, encoding: str) -> None:
    data = encode(call, encoding)
    framer = FlacFramer() if encoding == "flac" else OggFramer()
    units, held = [], 0
    for piece in pieces(data, seed=6, largest=1000):
        units += framer.feed(piece)
        held = max(held, len(framer.pending))
    units += framer.finish()
    assert held < 16 * 1024
    assert framer.header is not None
    assert sum(len(u.data) for u in units) + len(framer.pending) > 0.95 * len(data)
    # the units tile the media timeline
    assert all(a.start + a.samples == b.start for a, b in itertools.pairwise(units))
    seconds = (units[-1].start + units[-1].samples) / framer.clock_rate
    assert seconds == pytest.approx(len(call) / 2 / RATE, abs=0.05)


def test_corrupt_streams_are_named() -> None:
    with pytest.raises(AudioFormatError, match="does not start with 'fLaC'"):
        CompressedDecoder("flac", RATE, 1).feed(b"RIFF\x00\x00\x00\x00WAVE")
    with pytest.raises(AudioFormatError, match="capture pattern 'OggS'"):
        CompressedDecoder("ogg-opus", RATE, 1).feed(b"fLaC" + bytes(60))


def test_a_flipped_byte_in_an_ogg_page_fails_its_crc(clip: bytes) -> None:
    opus = bytearray(encode(clip, "ogg-opus"))
    opus[len(opus) // 2] ^= 0x40
    decoder = CompressedDecoder("ogg-opus", RATE, 1)
    with pytest.raises(AudioFormatError, match="fails its CRC"):
        for piece in pieces(bytes(opus), seed=7):
            decoder.feed(piece)


@pytest.mark.parametrize("encoding", ["flac", "ogg-opus"])
def test_damaged_streams_fail_with_an_audio_format_error_only(clip: bytes, encoding: str) -> None:
    """Bytes overwritten or the stream cut short: a clear AudioFormatError or decoded audio, never a crash
    (the server answers the first with a BadRequestException; anything else would be an internal failure)."""
    original = encode(clip[: RATE * 2 * 3], encoding)
    rng = random.Random(10)
    failures = 0
    for _ in range(40):
        data = bytearray(original)
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        decoder = CompressedDecoder(encoding, RATE, 1)
        try:
            for piece in pieces(bytes(data), seed=rng.randrange(1000), largest=3000):
                decoder.feed(piece)
            decoder.finish()
        except AudioFormatError as exc:
            assert exc.message.startswith(f"media-encoding {encoding}: ")
            failures += 1
    assert failures > 10  # damage is noticed (Ogg pages by their CRC, FLAC by its headers and the codec)


def test_vorbis_is_not_opus(clip: bytes) -> None:
    out = io.BytesIO()
    sf.write(out, np.frombuffer(clip, "<i2"), RATE, format="OGG", subtype="VORBIS")
    with pytest.raises(AudioFormatError, match="holds Vorbis, not Opus"):
        CompressedDecoder("ogg-opus", RATE, 1).feed(out.getvalue())


# --- through the server: the service's errors --------------------------------------------------------


@pytest.fixture
async def echo_server() -> AsyncIterator[TranscribeServer]:
    # close_timeout: a refused fast client still has audio in flight, which the server stops reading
    async with serve_in_background(
        ServerConfig(port=0, auth=False, engine=echo_engine, close_timeout=1.0)
    ) as server:
        yield server


def client(server: TranscribeServer, encoding: str, rate: int = RATE, **options: object) -> AWSTranscribeSTT:
    return AWSTranscribeSTT(
        region="us-east-1",
        endpoint_url=server.endpoint,
        credentials=("AKIDMEDIATEST0000001", "media/test/secret/0000000000000000000"),
        language_code="en-US",
        media_encoding=encoding,
        sample_rate=rate,
        **options,  # type: ignore[arg-type]
    )


async def collect(stt: AWSTranscribeSTT, data: bytes, seed: int = 0) -> list[str]:
    async def source() -> AsyncIterator[bytes]:
        for piece in pieces(data, seed):
            yield piece

    return [r.text for r in [r async for r in stt.stream(source())] if r.is_final and r.text]


async def test_echo_engine_hears_the_decoded_duration(echo_server: TranscribeServer, clip: bytes) -> None:
    """The echo engine says one word per 0.5 s it receives: decoded audio, not compressed bytes."""
    for encoding in ("flac", "ogg-opus"):
        texts = await collect(client(echo_server, encoding), encode(clip, encoding))
        assert len(words_of(texts)) == pytest.approx(len(clip) / 2 / RATE / 0.5, abs=1.5)


async def test_a_corrupt_stream_ends_with_a_bad_request(echo_server: TranscribeServer, clip: bytes) -> None:
    flac = bytearray(encode(clip, "flac"))
    flac[:4] = b"RIFF"
    with pytest.raises(ServiceError, match=r"BadRequestException.*does not start with 'fLaC'") as caught:
        await collect(client(echo_server, "flac"), bytes(flac))
    assert not caught.value.retryable


async def test_a_flac_stream_must_have_the_declared_rate(echo_server: TranscribeServer, clip: bytes) -> None:
    with pytest.raises(ServiceError, match="16000 Hz but the request declared sample-rate 8000"):
        await collect(client(echo_server, "flac", rate=8000), encode(clip, "flac"))


async def test_opus_channels_must_match(echo_server: TranscribeServer, clip: bytes) -> None:
    stereo = np.repeat(np.frombuffer(clip, "<i2")[:, None], 2, axis=1).tobytes()
    with pytest.raises(ServiceError, match="2 channel"):
        await collect(client(echo_server, "ogg-opus"), encode(stereo, "ogg-opus", channels=2))


# --- through the server: real speech, the local engine ------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> LocalEngineFactory:
    return LocalEngineFactory()


@pytest.fixture
async def speech_server(engine: LocalEngineFactory) -> AsyncIterator[TranscribeServer]:
    async with serve_in_background(ServerConfig(port=0, auth=False, engine=engine)) as server:
        yield server


@pytest.mark.model
async def test_compressed_speech_gets_the_pcm_words(speech_server: TranscribeServer, clip: bytes) -> None:
    """The AWS provider streams FLAC and Ogg Opus; the words are those of the PCM stream."""
    pcm_words = words_of(await collect(client(speech_server, "pcm", max_speed=None), clip))
    assert len(pcm_words) >= 12, pcm_words
    flac_words = words_of(await collect(client(speech_server, "flac"), encode(clip, "flac"), seed=1))
    opus_words = words_of(await collect(client(speech_server, "ogg-opus"), encode(clip, "ogg-opus"), seed=2))
    assert word_error_rate(pcm_words, flac_words) <= 0.05, (pcm_words, flac_words)
    assert word_error_rate(pcm_words, opus_words) <= 0.15, (pcm_words, opus_words)


@pytest.mark.model
@pytest.mark.parametrize("encoding", ["flac", "ogg-opus"])
async def test_raw_frames_cut_at_any_byte(
    speech_server: TranscribeServer, clip: bytes, encoding: str
) -> None:
    """A client that cuts the encoded stream anywhere (1 byte to 4 KB per AudioEvent) is understood."""
    pcm_words = words_of(await collect(client(speech_server, "pcm", max_speed=None), clip))
    query = f"language-code=en-US&media-encoding={encoding}&sample-rate={RATE}"
    async with open_stream(f"{speech_server.url}?{query}") as ws:
        for piece in pieces(encode(clip, encoding), seed=8):
            await ws.send(audio_event(piece))
        await ws.send(end_of_stream())
        reply = await read_reply(ws)
    assert reply.exception is None
    margin = 0.05 if encoding == "flac" else 0.15
    assert word_error_rate(pcm_words, words_of([reply.text])) <= margin, (pcm_words, reply.text)


# --- the AWS provider replays compressed audio after a reconnection -----------------------------------

SPEED = 2.0  # faults are timed in wall seconds: at twice real time they land inside the speech
AFTER_FIRST_FINAL = 4.0
"""Wall seconds into the stream (at twice real time) when the first utterance is final (~3.2 s) and
the second one sent but not final: the replay holds answered words (to drop) and unanswered ones."""
FAST = ReconnectPolicy(base_delay=0.05, max_delay=0.5)
REFERENCES: dict[str, list[Word]] = {}


async def paced_run(stt: AWSTranscribeSTT, data: bytes, seconds: float, speed: float | None) -> Run:
    """The encoded stream in 100 ms-sized byte pieces, each after its share of ``seconds / speed``."""

    async def source() -> AsyncIterator[bytes]:
        size = max(1, round(len(data) * 0.1 / seconds))
        for at in range(0, len(data), size):
            yield data[at : at + size]
            if speed is not None:
                await asyncio.sleep(0.1 / speed)

    run = Run()
    async for result in stt.stream(source(), on_connection_event=run.events.append):
        run.results.append(result)
    return run


@pytest.mark.model
@pytest.mark.parametrize(
    ("encoding", "faults"),
    [
        ("flac", FaultPlan(drop_after=AFTER_FIRST_FINAL, streams=1)),
        ("ogg-opus", FaultPlan(drop_after=AFTER_FIRST_FINAL, streams=1)),
        (
            "ogg-opus",
            FaultPlan(
                exception_after=AFTER_FIRST_FINAL, exception_name="InternalFailureException", streams=1
            ),
        ),
    ],
    ids=["flac-drop", "opus-drop", "opus-internal-failure"],
)
async def test_a_compressed_stream_survives_a_fault_with_every_word_once(
    engine: LocalEngineFactory, clip: bytes, encoding: str, faults: FaultPlan
) -> None:
    data, seconds = encode(clip, encoding), len(clip) / 2 / RATE
    if encoding not in REFERENCES:  # the words every fault-free run of this encoding yields
        async with serving(engine) as server:
            runs = [await paced_run(aws(server, media_encoding=encoding), data, seconds, None) for _ in "ab"]
        REFERENCES[encoding] = stable_words([run.words for run in runs])
    reference = REFERENCES[encoding]
    async with serving(engine, faults=faults) as server:
        stt = aws(server, media_encoding=encoding, reconnect=FAST)
        run = await paced_run(stt, data, seconds, SPEED)
    each_word_once(run, reference)
    assert run.kinds() == ["connected", "disconnected", "reconnecting", "reconnected", "closed"]
    stats = stt.last_stream_stats
    assert stats is not None and stats.connections == 2 and stats.lost_seconds == 0
    replayed = run.events[3].replayed_seconds
    assert 0 < replayed <= seconds and stats.replayed_seconds == pytest.approx(replayed)
    assert stats.audio_seconds == pytest.approx(seconds, abs=0.05)


async def test_a_two_channel_flac_stream_is_split_for_channel_identification(
    echo_server: TranscribeServer, clip: bytes
) -> None:
    """Channel identification on FLAC: the decoded channels are transcribed apart (ch_0, ch_1)."""
    mono = np.frombuffer(clip, "<i2")
    stereo = np.stack([mono, mono[::-1]], axis=1).tobytes()
    stt = client(echo_server, "flac", enable_channel_identification=True, number_of_channels=2)

    async def source() -> AsyncIterator[bytes]:
        for piece in pieces(encode(stereo, "flac", channels=2), seed=9):
            yield piece

    finals = [r for r in [r async for r in stt.stream(source())] if r.is_final]
    seconds = len(mono) / RATE
    for channel in ("ch_0", "ch_1"):
        heard = [r for r in finals if r.channel == channel]
        assert max(r.end for r in heard) == pytest.approx(seconds, abs=0.6)
