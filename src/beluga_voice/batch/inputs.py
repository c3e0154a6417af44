"""What a batch job transcribes: files, folders, globs, URLs and manifests, as a flat list of inputs.

Each input keeps the folder path relative to the common root of everything named on the command
line, so outputs mirror the inputs' layout (``a/b/call.wav`` -> ``OUT/a/b/call.json``).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from beluga_voice.errors import ConfigurationError

AUDIO_EXTENSIONS = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus"})
"""What a folder or a glob picks up: the containers the audio reader decodes."""

INPUT_OPTIONS: Mapping[str, type | tuple[type, ...]] = {
    "language_code": str,
    "identify_language": bool,
    "language_options": (list, str),
    "speakers": bool,
}
"""Per-input options a JSON-lines manifest may set (they override the command line's)."""

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class BatchInput:
    """One recording to transcribe: where to read it and where its transcript goes (relative)."""

    source: str
    """A local path or an fsspec URL (``s3://bucket/key.wav``)."""
    relative: PurePosixPath
    """The input's path below the job's common root, with its audio extension."""
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_url(self) -> bool:
        return is_url(self.source)


def is_url(source: str) -> bool:
    """A remote (fsspec) location rather than a local path; ``file://`` counts as a URL."""
    scheme = urlsplit(source).scheme
    return len(scheme) > 1 and "://" in source


def has_glob(text: str) -> bool:
    return any(char in text for char in _GLOB_CHARS)


def collect_inputs(
    arguments: Sequence[str], manifest: str | os.PathLike[str] | None = None
) -> list[BatchInput]:
    """Expand paths, folders (recursively, audio files only), globs, URLs and a manifest into inputs.

    Raises :class:`ConfigurationError` naming the argument when a path or glob matches nothing, a
    manifest line is malformed, or two inputs would write the same output.
    """
    found: list[tuple[str, str, Mapping[str, Any]]] = []  # (source, base folder key, options)
    for argument in arguments:
        found.extend((source, base, {}) for source, base in _expand(argument))
    if manifest is not None:
        found.extend(read_manifest(manifest))
    if not found:
        raise ConfigurationError("no audio inputs found: give files, folders, globs or --manifest FILE")
    unique: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for source, base, options in found:
        unique.setdefault(source, (base, options))
    root = _common_root([base for base, _ in unique.values()])
    inputs = [
        BatchInput(source, PurePosixPath(_key(source)).relative_to(root), options)
        for source, (_, options) in unique.items()
    ]
    return sorted(inputs, key=lambda item: str(item.relative))


def read_manifest(path: str | os.PathLike[str]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """One path (or URL) per line, or JSON objects ``{"path": ..., <INPUT_OPTIONS>}``.

    Relative paths are relative to the manifest's folder, so a manifest travels with its files.
    Blank lines and ``#`` comments are skipped.
    """
    manifest = Path(path)
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigurationError(f"--manifest {manifest}: no such file; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"--manifest {manifest}: cannot read it ({exc})") from None
    entries: list[tuple[str, str, Mapping[str, Any]]] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        where = f"--manifest {manifest} line {number}"
        options: dict[str, Any] = {}
        if text.startswith("{"):
            entry = _json_entry(text, where)
            text = entry.pop("path")
            options = _checked_options(entry, where)
        if is_url(text):
            entries.append((text, _parent_key(text), options))
            continue
        local = Path(text) if Path(text).is_absolute() else manifest.parent / text
        if not local.is_file():
            raise ConfigurationError(f"{where}: {text}: no such file; fix the line or remove it")
        source = str(local.resolve())
        entries.append((source, _parent_key(source), options))
    return entries


def _json_entry(text: str, where: str) -> dict[str, Any]:
    try:
        entry = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{where}: not valid JSON ({exc.msg}); write one object per line") from None
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or not entry["path"]:
        raise ConfigurationError(f'{where}: a JSON line needs a "path" string, e.g. {{"path": "call.wav"}}')
    return entry


def _checked_options(entry: Mapping[str, Any], where: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, value in entry.items():
        expected = INPUT_OPTIONS.get(name)
        if expected is None:
            raise ConfigurationError(
                f"{where}: unknown option {name!r}; a line may set path, {', '.join(INPUT_OPTIONS)}"
            )
        if not isinstance(value, expected):
            raise ConfigurationError(f"{where}: {name} = {value!r} has the wrong type")
        if name == "language_options" and isinstance(value, str):
            value = [code.strip() for code in value.split(",") if code.strip()]
        options[name] = value
    return options


def _expand(argument: str) -> Iterable[tuple[str, str]]:
    """(source, base folder key) pairs for one command-line argument."""
    if is_url(argument):
        yield argument, _parent_key(argument)
        return
    path = Path(argument)
    if path.is_dir():
        files = [p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]
        if not files:
            raise ConfigurationError(
                f"{argument}: folder holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})"
            )
        base = _key(str(path.resolve()))
        yield from ((str(p.resolve()), base) for p in files)
        return
    if path.is_file():
        source = str(path.resolve())
        yield source, _parent_key(source)
        return
    if has_glob(argument):
        matches = [
            Path(m)
            for m in sorted(glob.glob(argument, recursive=True))
            if Path(m).is_file() and Path(m).suffix.lower() in AUDIO_EXTENSIONS
        ]
        if not matches:
            raise ConfigurationError(f"{argument}: the pattern matches no audio files")
        literal = Path(*[part for part in _literal_prefix(path.parts)]) if path.parts else Path(".")
        base = _key(str(literal.resolve()))
        yield from ((str(m.resolve()), base) for m in matches)
        return
    raise ConfigurationError(f"{argument}: no such file or folder; check the path")


def _literal_prefix(parts: Sequence[str]) -> list[str]:
    """The folders of a glob before its first wildcard: the part the user named literally."""
    prefix: list[str] = []
    for part in parts[:-1]:
        if has_glob(part):
            break
        prefix.append(part)
    return prefix or ["."]


def _key(source: str) -> str:
    """A POSIX path identifying a source: absolute local paths, or ``/scheme/host/key`` for URLs."""
    if is_url(source):
        parts = urlsplit(source)
        if parts.scheme == "file":  # a local file all the same: mirror it like one
            return PurePosixPath(parts.path).as_posix()
        return str(PurePosixPath("/", parts.scheme, parts.netloc or "_", parts.path.lstrip("/")))
    return PurePosixPath(Path(source).resolve().as_posix()).as_posix()


def _parent_key(source: str) -> str:
    return str(PurePosixPath(_key(source)).parent)


def _common_root(bases: Sequence[str]) -> str:
    return os.path.commonpath(bases) if bases else "/"
