"""Is the speaker model installed? Answered from the file system alone, without loading it, so a
command or a server handshake can refuse speaker labels before any audio is read."""

from __future__ import annotations

from pathlib import Path

from beluga_voice.errors import ModelNotFoundError
from beluga_voice.providers.local.diarization.encoder import default_weights_path
from beluga_voice.providers.local.model_files import INSTALL_HINT


def require_speaker_model(weights_path: Path | None = None) -> Path:
    """The speaker weights file; ``ModelNotFoundError`` with the install command if it is missing."""
    path = weights_path or default_weights_path()
    if not path.is_file() or path.stat().st_size == 0:
        raise ModelNotFoundError(
            f"{path}: the speaker model weights are missing, so speakers cannot be labelled; {INSTALL_HINT}."
        )
    return path
