"""Compressed media: what decoding costs `beluga serve`, what framing costs the client, what a replay re-sends.

    python -m bench.media [--repeat N]

Real speech (the pyannote call, 30 s, 16 kHz mono) encoded with libsndfile's FLAC and Opus encoders,
cut into 100 ms AudioEvents. Decoding is timed as `beluga serve` does it (framing, codec, resampling
to the declared rate, s16 conversion); framing as the AWS client does it for its replay buffer. The
replay is simulated at 50 cut points: a final covers the audio up to 3 s before the cut, and the new
connection's replay is compared with what PCM would re-send at the same point.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from beluga_voice.audio.compressed import CompressedDecoder
from beluga_voice.audio.pcm import float_to_pcm16
from beluga_voice.providers.aws_transcribe.media_replay import MediaReplay
from beluga_voice.stt.model import TranscriptResult
from bench.report import table, write_section

DATA = Path(__file__).resolve().parent.parent / ".cache" / "data" / "pyannote" / "sample.wav"
RATE = 16000
SUBTYPES = {"flac": ("FLAC", "PCM_16"), "ogg-opus": ("OGG", "OPUS")}
OVERLAP = 1.0
UNANSWERED = 3.0


def encoded(pcm: np.ndarray, encoding: str) -> bytes:
    fmt, subtype = SUBTYPES[encoding]
    out = io.BytesIO()
    sf.write(out, pcm, RATE, format=fmt, subtype=subtype)
    return out.getvalue()


def pieces(data: bytes, seconds: float) -> list[bytes]:
    size = max(1, round(len(data) * 0.1 / seconds))
    return [data[i : i + size] for i in range(0, len(data), size)]


def cpu_per_hour(work: float, seconds: float, repeat: int) -> float:
    return work / (seconds * repeat) * 3600


def decode_cost(data: bytes, encoding: str, seconds: float, repeat: int) -> float:
    chunks = pieces(data, seconds)
    started = time.process_time()
    for _ in range(repeat):
        decoder = CompressedDecoder(encoding, RATE, 1)
        for chunk in chunks:
            float_to_pcm16(decoder.feed(chunk))
        float_to_pcm16(decoder.finish())
    return cpu_per_hour(time.process_time() - started, seconds, repeat)


def framing_cost(data: bytes, encoding: str, seconds: float, repeat: int) -> float:
    chunks = pieces(data, seconds)
    started = time.process_time()
    for _ in range(repeat):
        replay = MediaReplay(encoding, 30.0, OVERLAP)
        for chunk in chunks:
            replay.record(chunk)
    return cpu_per_hour(time.process_time() - started, seconds, repeat)


def replay_sizes(data: bytes, encoding: str, seconds: float) -> tuple[float, float, float, int]:
    """Mean seconds and bytes a reconnection re-sends, what PCM would re-send at the same points, and
    the header bytes among them."""
    chunks = pieces(data, seconds)
    re_sent, re_bytes, pcm_sent, header = [], [], [], 0
    for cut in np.linspace(6, seconds - 1, 50):
        replay = MediaReplay(encoding, 30.0, OVERLAP)
        for chunk in chunks[: round(cut * 10)]:
            replay.record(chunk)
        answered = replay.media_time - UNANSWERED
        pcm_sent.append(UNANSWERED + OVERLAP)
        replay.answered([TranscriptResult("r", False, answered - 1, answered, "x")])
        started = replay.begin(reconnect=True)
        header = len(replay.framer.header or b"")
        re_sent.append(started.seconds)
        re_bytes.append(sum(map(len, started.chunks)))
    return float(np.mean(re_sent)), float(np.mean(re_bytes)), float(np.mean(pcm_sent)), header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    pcm, _ = sf.read(DATA, dtype="int16")
    seconds = len(pcm) / RATE
    pcm_replay = UNANSWERED + OVERLAP  # PCM re-sends exactly the unanswered audio and the overlap
    rows: list[list[object]] = [
        [
            "pcm",
            f"{RATE * 2 * 8 / 1000:.0f}",
            "-",
            "-",
            "-",
            f"{pcm_replay:.2f}",
            f"{pcm_replay * RATE * 2 / 1000:.0f}",
            "1.00",
        ]
    ]
    for encoding in ("flac", "ogg-opus"):
        data = encoded(pcm, encoding)
        decode = decode_cost(data, encoding, seconds, args.repeat)
        framing = framing_cost(data, encoding, seconds, args.repeat)
        mean_seconds, mean_bytes, pcm_seconds, header = replay_sizes(data, encoding, seconds)
        rows.append(
            [
                encoding,
                f"{len(data) * 8 / seconds / 1000:.0f}",
                f"{decode:.1f}",
                f"{framing:.2f}",
                header,
                f"{mean_seconds:.2f}",
                f"{mean_bytes / 1000:.1f}",
                f"{mean_seconds / pcm_seconds:.2f}",
            ]
        )
    body = table(
        [
            "encoding",
            "kbit/s",
            "server decode CPU-s / audio h",
            "client framing CPU-s / audio h",
            "replay header bytes",
            "replayed s per reconnection",
            "replayed kB",
            "replayed s vs pcm",
        ],
        rows,
    )
    body += (
        f"\n\n{seconds:.0f} s of real speech in 100 ms pieces, CPU time of {args.repeat} runs in one process. A replay "
        f"re-sends the {UNANSWERED:g} s not yet answered plus {OVERLAP:g} s of overlap, widened to whole "
        "frames (FLAC: 4096 samples = 0.26 s) or pages (libsndfile's Opus pages: 1 s, plus 80 ms of "
        "decoder pre-roll), behind the codec headers."
    )
    write_section("media", "Compressed media (flac, ogg-opus)", body)


if __name__ == "__main__":
    main()
