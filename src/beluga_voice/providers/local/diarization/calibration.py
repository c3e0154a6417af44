"""Similarity thresholds of the offline diarizer, per speaker model, in one place.

Cosine similarities have a different scale for every speaker model, so a threshold belongs to the
model it was measured with. Each figure sits in the gap between the similarities of windows of one
speaker and of two speakers on the labelled recordings (the pyannote call, the stitched
conversations, the single-speaker utterances), where the DER stays flat: rerun
``python -m bench.speaker_calibration`` after changing the model and put its answer here.
"""

from __future__ import annotations

# Average-linkage merging of 1.5 s windows stops below this similarity between two groups.
MERGE_THRESHOLDS: dict[str, float] = {
    # CAM++ (192-d): one speaker 0.60 on the phone call and 0.79 on clean speech (means), two speakers
    # 0.33 and 0.11. DER flat from 0.35 to 0.50.
    "CamPlusPlusEncoder": 0.45,
}
DEFAULT_MERGE_THRESHOLD = 0.5


def merge_threshold(encoder: object) -> float:
    """The calibrated merge threshold for ``encoder``'s model (a middle value for an unknown one)."""
    return MERGE_THRESHOLDS.get(type(encoder).__name__, DEFAULT_MERGE_THRESHOLD)
