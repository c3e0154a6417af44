"""Reading PyTorch checkpoints into numpy arrays, without importing torch.

Two serialisations exist. The legacy one (resemblyzer's ``pretrained.pt``) is five consecutive
pickles (magic number, protocol version, system info, the object with storages as persistent ids,
the sorted storage keys) followed by each storage as an 8-byte little-endian element count and its
raw bytes. The zip one (torch >= 1.6, CAM++ and pyannote's weights) is a zip archive holding
``<name>/data.pkl`` (the object, storages as persistent ids) and each storage's raw bytes as
``<name>/data/<key>``. Only the classes a state dict needs are allowed; anything else in the pickle
is refused, so a hostile file cannot run code. A caller may name a few extra classes (such as
the hyper-parameter records of a training checkpoint) that are then read as inert records.
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

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001

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
    """A storage named in the pickle; its bytes come later in the file."""

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
    """The checkpoint's top-level dict, every tensor a numpy array; zip or legacy format.

    ``inert`` names ``module.Class`` entries read as ``InertRecord`` instead of being refused.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelNotFoundError(f"{path}: cannot read the model weights ({exc}); {INSTALL_HINT}.") from exc
    stream = io.BytesIO(raw)
    is_zip = zipfile.is_zipfile(stream)
    stream.seek(0)
    try:
        return _parse_zip(stream, inert) if is_zip else _parse(stream, inert)
    except (
        pickle.UnpicklingError,
        zipfile.BadZipFile,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
    ) as exc:
        kind = "zip" if is_zip else "legacy"
        raise ModelNotFoundError(
            f"{path}: is not a readable {kind} PyTorch checkpoint ({exc}); the file is damaged: "
            f"{INSTALL_HINT}."
        ) from exc


def load_legacy_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint as ``load_checkpoint`` reads it (kept for the callers that name the format)."""
    return load_checkpoint(path)


def _parse_zip(stream: io.BytesIO, inert: Collection[str]) -> dict[str, Any]:
    with zipfile.ZipFile(stream) as archive:
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


def _parse(stream: io.BytesIO, inert: Collection[str] = ()) -> dict[str, Any]:
    header = _RestrictedUnpickler(stream)
    if header.load() != LEGACY_MAGIC_NUMBER:
        raise ValueError("wrong magic number (a zip-format or non-PyTorch file?)")
    if header.load() != LEGACY_PROTOCOL_VERSION:
        raise ValueError("unsupported legacy protocol version")
    sys_info = header.load()
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise ValueError("only little-endian checkpoints are supported")
    body = _RestrictedUnpickler(stream, inert)
    obj = body.load()
    keys = _RestrictedUnpickler(stream).load()
    if not isinstance(keys, list) or set(map(str, keys)) != set(body.storages):
        raise ValueError("storage key list does not match the storages the object uses")
    for key in keys:
        ref = body.storages[str(key)]
        count = int.from_bytes(_read_exact(stream, 8), "little", signed=True)
        itemsize = np.dtype(ref.dtype).itemsize
        ref.data = np.frombuffer(_read_exact(stream, count * itemsize), dtype=ref.dtype).copy()
    if not isinstance(obj, dict):
        raise ValueError(f"top-level object is a {type(obj).__name__}, not a dict")
    materialised: dict[str, Any] = _materialise(obj)
    return materialised


def _read_exact(stream: io.BytesIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the file ends inside a tensor (truncated download?)")
    return data


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
