"""The torch-free speaker encoder: the legacy checkpoint loader and voice prints on real speech."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from beluga_voice.audio import read_audio
from beluga_voice.errors import ModelNotFoundError
from beluga_voice.providers.local.diarization.checkpoint import load_legacy_checkpoint
from beluga_voice.providers.local.diarization.encoder import SpeakerEncoder, default_weights_path
from beluga_voice.providers.local.diarization.features import mel_filterbank, mel_spectrogram


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    return SpeakerEncoder()


def test_loader_reads_the_pretrained_lstm_without_torch() -> None:
    checkpoint = load_legacy_checkpoint(default_weights_path())
    state = checkpoint["model_state"]
    assert state["lstm.weight_ih_l0"].shape == (1024, 40)
    for layer in (1, 2):
        assert state[f"lstm.weight_ih_l{layer}"].shape == (1024, 256)
    assert state["linear.weight"].shape == (256, 256)
    assert all(np.all(np.isfinite(v)) for v in state.values() if isinstance(v, np.ndarray))
    assert checkpoint["step"] > 0


def test_loader_refuses_a_truncated_file(tmp_path: Path) -> None:
    damaged = tmp_path / "pretrained.pt"
    damaged.write_bytes(default_weights_path().read_bytes()[:100_000])
    with pytest.raises(ModelNotFoundError, match=r"pretrained\.pt.*damaged"):
        load_legacy_checkpoint(damaged)


def test_loader_refuses_to_run_code_from_a_pickle(tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.pt"
    with hostile.open("wb") as handle:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, handle, protocol=2)
        pickle.dump({"model_state": print}, handle, protocol=2)  # a callable from builtins
    with pytest.raises(
        ModelNotFoundError, match=r"hostile\.pt.*refusing to load (__builtin__|builtins)\.print"
    ):
        load_legacy_checkpoint(hostile)


def test_missing_weights_name_the_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"missing\.pt.*requirements/models\.txt"):
        SpeakerEncoder(tmp_path / "missing.pt")


def test_mel_filterbank_covers_the_spectrum_once() -> None:
    bank = mel_filterbank()
    assert bank.shape == (40, 201)
    assert np.all(bank >= 0)
    peaks = bank.argmax(axis=1)
    assert np.all(np.diff(peaks) >= 0)  # filters ordered from low to high frequency
    # a 1 kHz tone lands in the bands around 1 kHz, not elsewhere
    tone = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000).astype(np.float32)
    loudest = int(mel_spectrogram(tone).mean(axis=0).argmax())
    assert abs(int(bank[loudest].argmax()) - 25) <= 1  # bin 25 = 1000 Hz at 40 Hz per bin


def test_prints_tell_two_real_speakers_apart(data_dir: Path, encoder: SpeakerEncoder) -> None:
    reader = [read_audio(p).samples[:, 0] for p in sorted((data_dir / "librivox").glob("*.wav"))]
    cards = [read_audio(p).samples[:, 0] for p in sorted((data_dir / "cards").glob("*.wav"))]
    prints = encoder.embed_many(reader + cards)
    assert prints.shape == (10, 256)
    assert np.allclose(np.linalg.norm(prints, axis=1), 1.0, atol=1e-4)
    similarity = prints @ prints.T
    same = [similarity[i, j] for i in range(10) for j in range(i + 1, 10) if (i < 5) == (j < 5)]
    different = [similarity[i, j] for i in range(5) for j in range(5, 10)]
    assert np.mean(same) > np.mean(different) + 0.1
    # every recording is closer to its own speaker's mean print than to the other speaker's
    centroids = np.stack([prints[:5].mean(axis=0), prints[5:].mean(axis=0)])
    assert list((prints @ centroids.T).argmax(axis=1)) == [0] * 5 + [1] * 5
