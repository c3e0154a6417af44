"""Calibrate the offline diarizer's merge threshold for the speaker model in use.

Prints, per labelled recording, the cosine similarity of 1.5 s windows of one speaker and of two
speakers, then the DER and speaker count of file-mode diarization over a range of thresholds (and
the count on the single-speaker utterances). The threshold to keep is the middle of the range where
every recording is right; it goes in src/beluga_voice/providers/local/diarization/calibration.py.

Run: ``python -m bench.speaker_calibration`` (a minute or two). Prints only; writes nothing.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from beluga_voice.providers.local import LocalEngine
from beluga_voice.providers.local.diarization.agglomerative import cosine_similarities
from beluga_voice.providers.local.diarization.calibration import merge_threshold
from beluga_voice.providers.local.diarization.der import score
from beluga_voice.providers.local.diarization.offline import OfflineDiarizer, OfflineSettings
from beluga_voice.providers.local.diarization.regions import speech_regions
from beluga_voice.stt.model import SpeakerTurn
from bench.local_data import Recording, conversations, pocketsphinx_utterances, pyannote_rttm, pyannote_sample

THRESHOLDS = np.round(np.arange(0.20, 0.86, 0.05), 2)


def window_similarities(
    diarizer: OfflineDiarizer, recording: Recording, reference: list[SpeakerTurn]
) -> tuple[list[float], list[float]]:
    """Similarities of disjoint windows lying within one reference speaker's turn: (same, different)."""
    pieces = [p for p in diarizer._pieces(speech_regions(recording.samples)) if p.full]
    owners: list[str | None] = []
    for piece in pieces:
        inside = [t.speaker for t in reference if t.start - 0.1 <= piece.start and piece.end <= t.end + 0.1]
        owners.append(inside[0] if len(set(inside)) == 1 else None)
    similarity = cosine_similarities(diarizer._embed(recording.samples, pieces))
    same: list[float] = []
    different: list[float] = []
    for i, a in enumerate(pieces):
        for j in range(i + 1, len(pieces)):
            if owners[i] and owners[j] and pieces[j].start >= a.end:
                (same if owners[i] == owners[j] else different).append(float(similarity[i, j]))
    return same, different


def main() -> None:
    encoder = LocalEngine().speaker_encoder()
    diarizer = OfflineDiarizer(encoder)
    call = pyannote_sample()
    labelled = [(call, [SpeakerTurn(t.speaker, t.start, t.end) for t in pyannote_rttm()])]
    labelled += [(r, [SpeakerTurn(t.speaker, t.start, t.end) for t in r.turns]) for r in conversations()]
    singles = pocketsphinx_utterances("librivox") + pocketsphinx_utterances("cards")
    print(f"encoder {type(encoder).__name__}; threshold in use {merge_threshold(encoder)}")
    for recording, reference in labelled:
        same, different = window_similarities(diarizer, recording, reference)
        print(
            f"{recording.name}: one speaker {np.mean(same):.3f} (10th pct {np.percentile(same, 10):.3f}), "
            f"two speakers {np.mean(different):.3f} (90th pct {np.percentile(different, 90):.3f})"
        )
    for threshold in THRESHOLDS:
        trial = OfflineDiarizer(
            encoder, dataclasses.replace(OfflineSettings(), merge_threshold=float(threshold))
        )
        cells = []
        for recording, reference in labelled:
            segments = trial.diarize(recording.samples)
            hypothesis = [SpeakerTurn(s.speaker, s.start, s.end) for s in segments]
            der = score(reference, hypothesis, recording.duration).der
            cells.append(f"{recording.name} DER {der:.3f} n={len({s.speaker for s in segments})}")
        ones = sum(len({s.speaker for s in trial.diarize(u.samples)}) == 1 for u in singles)
        print(f"{threshold:.2f}: " + "; ".join(cells) + f"; single speakers right {ones}/{len(singles)}")


if __name__ == "__main__":
    main()
