"""Shared fixtures: real speech fetched by scripts/fetch-data.sh, and the shared protocol folder."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".cache" / "data"
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Real speech (pocketsphinx test data, pyannote sample); `make test` fetches it first."""
    if not (DATA / "pyannote" / "sample.wav").exists():
        pytest.fail("test data missing: run ./scripts/fetch-data.sh (make test does it for you)")
    return DATA


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: the shared protocol and conformance folder is not beside the repo")
    return SHARED
