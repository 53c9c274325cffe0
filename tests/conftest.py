"""Shared fixtures: the path to the published benchmark tables (``../shared/data`` by default)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("SDOT_NAS_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Directory holding nb201_cifar10.csv, nb301_darts_725.json, nb101_500.json."""
    if not (DATA_DIR / "nb201_cifar10.csv").exists():
        pytest.fail(f"benchmark tables not found in {DATA_DIR}; set SDOT_NAS_DATA to their folder")
    return DATA_DIR
