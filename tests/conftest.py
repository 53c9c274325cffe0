"""Shared fixtures: the benchmark tables shipped inside the package (:mod:`hotnas.data`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotnas.data import DATA_DIR, table_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Directory holding the shipped nb201_cifar10.csv.gz, nb301_darts_725.json.gz, nb101_500.json.gz."""
    return DATA_DIR


@pytest.fixture(scope="session")
def nb201_csv() -> Path:
    """The shipped NB201-CIFAR-10 table (gzip CSV)."""
    return table_path("nb201")
