"""Reading a PyTorch checkpoint into numpy arrays, without importing torch.

A checkpoint saved by torch >= 1.6 (CAM++'s and pyannote's weights) is a zip archive holding
``<name>/data.pkl`` (the object, with each tensor's storage as a persistent id) and each storage's
raw little-endian bytes as ``<name>/data/<key>``; the older pre-zip format is not read. Only the
classes a state dict needs are allowed; anything else in the pickle is refused, so a hostile file
cannot run code. A caller may name a few extra classes (such as the hyper-parameter records of a
training checkpoint) that are then read as inert records.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from beluga_voice.errors import ModelNotFoundError
from beluga_voice.providers.local.model_files import INSTALL_HINT

# torch storage class name -> numpy little-endian dtype
_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


@dataclass(frozen=True)
class _StorageType:
    dtype: str


@dataclass
class _StorageRef:
    """A storage named in the pickle; its bytes are a separate member of the archive."""

    key: str
    dtype: str
    data: npt.NDArray[Any] | None = None


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: _StorageRef, offset: int, shape: Any, stride: Any, *_rest: Any) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(int(s) for s in shape), tuple(int(s) for s in stride))


class InertRecord:
    """Stands in for an allowed non-tensor class: keeps its arguments and state, runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.state: Any = None

    def __new__(cls, *_args: Any, **_kwargs: Any) -> InertRecord:
        return super().__new__(cls)

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], inert: Collection[str] = ()) -> None:
        super().__init__(file)
        self.storages: dict[str, _StorageRef] = {}
        self.inert = frozenset(inert)

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if f"{module}.{name}" in self.inert:
            return type(name, (InertRecord,), {})
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a checkpoint")

    def persistent_load(self, pid: Any) -> _StorageRef:
        # ("storage", storage_type, key, location, element_count[, view_metadata])
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unknown storage type {storage_type!r}")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        return self.storages.setdefault(key, _StorageRef(key, storage_type.dtype))


def load_checkpoint(path: Path, inert: Collection[str] = ()) -> dict[str, Any]:
    """The checkpoint's top-level dict with every tensor turned into a numpy array.

    ``inert`` names ``module.Class`` entries read as ``InertRecord`` instead of being refused.
    """
    try:
        archive = zipfile.ZipFile(path)
    except OSError as exc:
        raise ModelNotFoundError(f"{path}: cannot read the model weights ({exc}); {INSTALL_HINT}.") from exc
    except zipfile.BadZipFile as exc:
        raise ModelNotFoundError(
            f"{path}: is not a zip-format PyTorch checkpoint ({exc}); the file is damaged or of another "
            f"kind: {INSTALL_HINT}."
        ) from exc
    try:
        with archive:
            return _parse(archive, inert)
    except (
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
    ) as exc:
        raise ModelNotFoundError(
            f"{path}: is not a readable PyTorch checkpoint ({exc}); the file is damaged: {INSTALL_HINT}."
        ) from exc


def _parse(archive: zipfile.ZipFile, inert: Collection[str]) -> dict[str, Any]:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise ValueError("no single <name>/data.pkl in the archive (not a PyTorch checkpoint?)")
    prefix = pickles[0][: -len("data.pkl")]
    order = f"{prefix}byteorder"
    if order in names and archive.read(order).strip() != b"little":
        raise ValueError("only little-endian checkpoints are supported")
    body = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), inert)
    obj = body.load()
    for key, ref in body.storages.items():
        blob = archive.read(f"{prefix}data/{key}")
        itemsize = np.dtype(ref.dtype).itemsize
        if len(blob) % itemsize:
            raise ValueError(f"storage {key} is {len(blob)} bytes, not a whole number of items")
        ref.data = np.frombuffer(blob, dtype=ref.dtype).copy()
    if not isinstance(obj, dict):
        raise ValueError(f"top-level object is a {type(obj).__name__}, not a dict")
    materialised: dict[str, Any] = _materialise(obj)
    return materialised


def _materialise(value: Any) -> Any:
    if isinstance(value, _TensorRef):
        data = value.storage.data
        if data is None:
            raise ValueError(f"storage {value.storage.key} has no data")
        count = int(np.prod(value.shape)) if value.shape else 1
        last = value.offset + sum((n - 1) * s for n, s in zip(value.shape, value.stride, strict=True))
        if count and last >= data.size:
            raise ValueError(f"tensor exceeds its storage {value.storage.key}")
        view = np.lib.stride_tricks.as_strided(
            data[value.offset :],
            shape=value.shape,
            strides=tuple(s * data.itemsize for s in value.stride),
            writeable=False,
        )
        return np.array(view)
    if isinstance(value, dict):
        return {k: _materialise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_materialise(v) for v in value)
    return value
