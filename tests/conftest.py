"""Shared fixtures: the benchmark tables shipped inside the package (:mod:`hotnas.data`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hotnas.data import DATA_DIR, table_path

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# The test tree mirrors the packages (tests/sdot, tests/hotnas, tests/experiments); the shared toy plugin
# (tests/toy_components.py) is imported by name from every folder (worker processes inherit sys.path;
# CLI subprocesses get tests/ in their PYTHONPATH from the tests that start them).
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Directory holding the shipped nb201_cifar10.csv.gz, nb301_darts_725.json.gz, nb101_500.json.gz."""
    return DATA_DIR


@pytest.fixture(scope="session")
def nb201_csv() -> Path:
    """The shipped NB201-CIFAR-10 table (gzip CSV)."""
    return table_path("nb201")


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test (tiny networks run fastest and bit-reproducibly so on a busy machine)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(before)
