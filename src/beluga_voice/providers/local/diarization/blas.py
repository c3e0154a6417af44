"""Keep numpy's OpenBLAS to one thread while the speaker encoder runs.

The encoder's LSTM is hundreds of small matrix products in a row. OpenBLAS splits each one over
all cores and busy-waits between them; next to CTranslate2's own threads (and other streams) that
made the encoder ten times slower on a loaded 2-core machine. numpy has no API for this, so the
library's own setter is called through ctypes (the approach threadpoolctl takes). The setting is
process-wide: a process running the speech engine wants single-threaded BLAS anyway, since the
engine's pool already uses the cores. Without OpenBLAS (MKL, Accelerate) this does nothing.
"""

from __future__ import annotations

import ctypes
import re
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import cast

_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
_lock = threading.Lock()


@cache
def _openblas_setter() -> Callable[[int], None] | None:
    import numpy  # noqa: F401  (loads the BLAS library whose setter is looked up)

    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for library in sorted(set(re.findall(r"(/\S*openblas\S*\.so[\w.]*)", maps))):
        try:
            handle = ctypes.CDLL(library)
        except OSError:
            continue
        for name in _SETTERS:
            setter = getattr(handle, name, None)
            if setter is not None:
                setter.argtypes = [ctypes.c_int]
                setter.restype = None
                return cast(Callable[[int], None], setter)
    return None


def single_threaded_blas() -> bool:
    """Limit OpenBLAS to one thread; True if an OpenBLAS was found and set."""
    with _lock:
        setter = _openblas_setter()
        if setter is None:
            return False
        setter(1)
        return True
