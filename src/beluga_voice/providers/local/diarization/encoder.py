"""What the engine needs from a speaker model, and the default one (CAM++, run with numpy).

Diarization only ever asks for voice prints: one L2-normalised vector per stretch of 16 kHz audio,
where the cosine similarity of two prints says how likely they are the same voice. Any model that
gives them satisfies ``SpeakerEncoder``; ``load_speaker_encoder`` returns the default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from beluga_voice.providers.local.diarization.campplus import CamPlusPlusEncoder, default_weights_path

Float32Array = npt.NDArray[np.float32]


class SpeakerEncoder(Protocol):
    """Voice prints from 16 kHz mono float32 audio. Implementations are thread-safe."""

    @property
    def dim(self) -> int:
        """Length of a print."""
        ...

    def embed(self, samples: Float32Array) -> Float32Array:
        """One L2-normalised print (``dim``,) for a stretch of speech."""
        ...

    def embed_many(self, pieces: list[Float32Array]) -> Float32Array:
        """(len(pieces), ``dim``) L2-normalised prints, computed together where the model can batch."""
        ...


def load_speaker_encoder(weights_path: Path | None = None) -> SpeakerEncoder:
    """The default speaker model, CAM++ (``weights_path``: another copy of its checkpoint).

    Raises ``ModelNotFoundError`` naming the package and the install command if the weights are
    not installed.
    """
    return CamPlusPlusEncoder(weights_path)


__all__ = ["SpeakerEncoder", "default_weights_path", "load_speaker_encoder"]
