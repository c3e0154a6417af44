"""Speaker model figures: how well voice prints separate real voices, and what they cost.

Run: ``python -m bench.speaker_model`` (under a minute). For each encoder it reports, on the
pyannote phone call (single-speaker stretches cut with its RTTM) and on the librivox reader vs the
pocketsphinx "cards" speaker: the mean cosine similarity of same-speaker pairs and of
cross-speaker pairs, their difference (the margin), the equal error rate over all pairs, and the
threshold at that rate; then the seconds of compute per second of audio on one thread. Then the
segmentation model's frame-level agreement with the call's RTTM. Writes the
``speaker-model`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from beluga_voice.audio import read_audio
from beluga_voice.providers.local.diarization.blas import single_threaded_blas
from beluga_voice.providers.local.diarization.encoder import SpeakerEncoder, load_speaker_encoder
from beluga_voice.providers.local.diarization.segmentation import (
    CHUNK_SAMPLES,
    SegmentationModel,
    frame_centres,
)
from bench.local_data import DATA, RATE, FloatArray, pyannote_rttm, pyannote_sample
from bench.report import table, write_section

WINDOW = 1.5  # seconds per window in the windowed figures (a short turn)
MIN_REGION = 1.0  # single-speaker stretches shorter than this are left out


@dataclass(frozen=True)
class Separation:
    same: float
    cross: float
    eer: float
    threshold: float
    pairs: int

    @property
    def margin(self) -> float:
        return self.same - self.cross


def separation(prints: FloatArray, speakers: Sequence[str]) -> Separation:
    """Same- vs cross-speaker cosine over all pairs; EER and its threshold."""
    same: list[float] = []
    cross: list[float] = []
    for i, j in itertools.combinations(range(len(speakers)), 2):
        (same if speakers[i] == speakers[j] else cross).append(float(prints[i] @ prints[j]))
    scores = np.array(same + cross)
    truth = np.array([1] * len(same) + [0] * len(cross), dtype=np.int64)
    best, eer = (1.0, 0.0), 0.5
    for threshold in np.unique(scores):
        false_reject = np.mean(scores[truth == 1] < threshold)
        false_accept = np.mean(scores[truth == 0] >= threshold)
        gap = abs(false_reject - false_accept)
        if gap < best[0] or (gap == best[0] and threshold > best[1]):
            best = (gap, float(threshold))
            eer = (false_reject + false_accept) / 2
    return Separation(float(np.mean(same)), float(np.mean(cross)), float(eer), best[1], len(scores))


def call_regions() -> tuple[list[FloatArray], list[str]]:
    """Stretches of the pyannote call where exactly one person speaks (per its RTTM)."""
    call = pyannote_sample().samples
    turns = pyannote_rttm()
    pieces, speakers = [], []
    for turn in turns:
        cuts = [(turn.start, turn.end)]
        for other in turns:
            if other.speaker == turn.speaker:
                continue
            cuts = [
                part
                for start, end in cuts
                for part in ((start, min(end, other.start)), (max(start, other.end), end))
                if part[1] - part[0] > 0
            ]
        for start, end in cuts:
            if end - start >= MIN_REGION:
                pieces.append(call[int(start * RATE) : int(end * RATE)])
                speakers.append(turn.speaker)
    return pieces, speakers


def two_voices() -> tuple[list[FloatArray], list[str]]:
    """The librivox reader's five recordings and the cards speaker's five."""
    pieces, speakers = [], []
    for corpus in ("librivox", "cards"):
        for path in sorted((DATA / corpus).glob("*.wav")):
            pieces.append(read_audio(path).convert(RATE).samples[:, 0])
            speakers.append(corpus)
    return pieces, speakers


def windows(pieces: Sequence[FloatArray], speakers: Sequence[str]) -> tuple[list[FloatArray], list[str]]:
    size, hop = int(WINDOW * RATE), int(WINDOW * RATE / 2)
    out, who = [], []
    for piece, speaker in zip(pieces, speakers, strict=True):
        for start in range(0, max(1, piece.size - size + 1), hop):
            out.append(piece[start : start + size])
            who.append(speaker)
    return out, who


def compute_per_second(encoder: SpeakerEncoder, pieces: Sequence[FloatArray]) -> float:
    """Seconds of compute per second of audio (best of three, one BLAS thread)."""
    audio = sum(p.size for p in pieces) / RATE
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        encoder.embed_many(list(pieces))
        best = min(best, time.perf_counter() - started)
    return best / audio


def measure(name: str, load: Callable[[], SpeakerEncoder]) -> list[list[object]]:
    encoder = load()
    rows: list[list[object]] = []
    call, call_who = call_regions()
    voices, voices_who = two_voices()
    for label, (pieces, who) in (
        ("pyannote call, whole stretches", (call, call_who)),
        (f"pyannote call, {WINDOW} s windows", windows(call, call_who)),
        ("librivox vs cards, whole recordings", (voices, voices_who)),
        (f"librivox vs cards, {WINDOW} s windows", windows(voices, voices_who)),
    ):
        s = separation(encoder.embed_many(pieces), who)
        rows.append(
            [
                name,
                label,
                s.pairs,
                f"{s.same:.2f}",
                f"{s.cross:.2f}",
                f"{s.margin:.2f}",
                f"{100 * s.eer:.1f} %",
                f"{s.threshold:.2f}",
            ]
        )
    short, _ = windows(call, call_who)
    speed_short = compute_per_second(encoder, short)
    speed_long = compute_per_second(encoder, [pyannote_sample().samples])
    rows.append(
        [
            name,
            "compute per second of audio, 1.5 s pieces / one 30 s piece",
            "",
            "",
            "",
            "",
            f"{speed_short:.3f} / {speed_long:.3f} s",
            "",
        ]
    )
    return rows


def segmentation_rows() -> list[list[object]]:
    """segmentation-3.0 on 10 s chunks of the call against its RTTM, frame by frame."""
    model = SegmentationModel()
    call = pyannote_sample().samples
    turns = pyannote_rttm()
    names = sorted({t.speaker for t in turns})
    rows: list[list[object]] = []
    starts = range(0, max(1, int(call.size / RATE) - 9), 5)
    chunks = np.stack([call[s * RATE : s * RATE + CHUNK_SAMPLES] for s in starts])
    started = time.perf_counter()
    activities = [model.speaker_activity(chunk) for chunk in chunks]
    seconds = (time.perf_counter() - started) / (len(chunks) * CHUNK_SAMPLES / RATE)
    for start, activity in zip(starts, activities, strict=True):
        times = frame_centres(activity.shape[0]) + start
        reference = np.array(
            [[any(t.start <= x < t.end for t in turns if t.speaker == n) for n in names] for x in times],
            np.float32,
        )
        right = max(
            float((activity[:, list(pair)] == reference).all(axis=1).mean())
            for pair in itertools.permutations(range(activity.shape[1]), len(names))
        )
        speech = float(((activity.sum(axis=1) > 0) == (reference.sum(axis=1) > 0)).mean())
        both, found = reference.sum(axis=1) > 1, activity.sum(axis=1) > 1
        rows.append(
            [
                f"{start}-{start + 10} s",
                f"{100 * right:.0f} %",
                f"{100 * speech:.0f} %",
                f"{int((found & both).sum())} of {int(both.sum())}",
                int(found.sum()),
            ]
        )
    rows.append(["compute per second of audio", "", "", "", f"{seconds:.3f} s"])
    return rows


def main() -> None:
    single_threaded_blas()
    rows = measure("CAM++ (numpy)", load_speaker_encoder)
    body = (
        "Voice prints of the default speaker model on real speech. Same/cross: mean cosine similarity of\n"
        "same-speaker and cross-speaker pairs; margin = same - cross; EER over all pairs and the cosine\n"
        "threshold where false accepts equal false rejects. The call's single-speaker stretches are cut\n"
        f"with its RTTM (overlaps removed, stretches of {MIN_REGION} s or more). Compute: best of three, one\n"
        "BLAS thread, fbank included.\n\n"
        + table(["model", "data", "pairs", "same", "cross", "margin", "EER", "threshold"], rows)
    )
    body += (
        "\n\npyannote segmentation-3.0 (numpy) on 10 s chunks of the pyannote call, frame by frame (17 ms)\n"
        "against its RTTM: frames where the set of speakers is fully right (best pairing of the model's\n"
        "local speakers with the RTTM's), speech/non-speech right, overlap frames found, frames flagged as\n"
        "overlap.\n\n"
        + table(["chunk", "speakers right", "speech right", "overlap found", "flagged"], segmentation_rows())
    )
    write_section("speaker-model", "Speaker model: separation of real voices and cost", body)


if __name__ == "__main__":
    main()
