"""Published benchmark tables shipped inside the package (gzip-compressed), and their readers.

Shipped (values are published results — facts — redistributed under their licences):

=========================  ==============================================================  ============
file                       content                                                         source
=========================  ==============================================================  ============
``nb201_cifar10.csv.gz``   NAS-Bench-201, CIFAR-10, all 15,625 cells: ``index, arch_str,   NAS-Bench-201 /
                           val_acc, test_acc, params_M, flops_M, latency_ms_gold_6226``    NATS-Bench (MIT);
                           (accuracies in %, epoch 200, mean over seeds)                   latency: HELP (MIT)
``nb301_darts_725.json.gz``725 evaluated DARTS-space genotypes (CIFAR-10):                 NASLib zero-cost
                           ``{"cifar10": {ARCH: {"val_accuracy": ..., ...}}}``               files (Apache-2.0)
``nb101_500.json.gz``      500 NAS-Bench-101 cells (CIFAR-10, 108 epochs):                 NASLib zero-cost
                           ``{"nasbench101": {"cifar10": {SPEC: {"val_accuracy": ...}}}}``  files (Apache-2.0)
``digits_nb201.json.gz``   this project's digits ground-truth table (partial; read by      generated here
                           :mod:`hotnas.benchmarks.digits_table`, see ``LICENSES.md``)    (MIT)
=========================  ==============================================================  ============

A user's own copy of any table (plain or ``.gz``) is read by the same functions: pass its path.

    >>> archs, val = load_table("nb201")        # 15,625 strings and validation accuracies (%)
    >>> len(archs), round(float(val.max()), 2)
    (15625, 91.61)
"""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path
from typing import IO

import numpy as np

__all__ = ["DATA_DIR", "TABLES", "table_path", "open_text", "load_table"]

#: Folder of the shipped tables.
DATA_DIR = Path(__file__).resolve().parent

#: short name -> shipped file name
TABLES = {
    "nb201": "nb201_cifar10.csv.gz",
    "darts": "nb301_darts_725.json.gz",
    "nb101": "nb101_500.json.gz",
}


def table_path(name: str) -> Path:
    """Path of a shipped table by short name (``"nb201"``, ``"darts"``, ``"nb101"``)."""
    try:
        return DATA_DIR / TABLES[name]
    except KeyError:
        raise ValueError(f"unknown shipped table {name!r}; expected one of {sorted(TABLES)}") from None


def open_text(path: str | os.PathLike) -> IO[str]:
    """Open a table for reading as text; ``.gz`` files are decompressed on the fly.

    Raises:
        FileNotFoundError naming the path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"benchmark table not found: {path}")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def load_table(name: str, path: str | os.PathLike | None = None) -> tuple[list[str], np.ndarray]:
    """Architecture strings and validation accuracies (%) of a table.

    Args:
        name: ``"nb201"`` (CSV, columns ``arch_str``, ``val_acc``), ``"darts"`` or ``"nb101"`` (NASLib JSON).
        path: a user's copy (plain or ``.gz``); default the shipped one.

    Returns:
        ``(archs, val)``: list of n strings, float array of shape (n,).
    """
    import csv

    path = table_path(name) if path is None else Path(path)
    with open_text(path) as fh:
        if name == "nb201":
            rows = list(csv.DictReader(fh))
            return [r["arch_str"] for r in rows], np.array([float(r["val_acc"]) for r in rows])
        try:
            d = json.load(fh)
            d = d["cifar10"] if name == "darts" else d["nasbench101"]["cifar10"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path}: not a NASLib {name} table ({type(e).__name__}: {e})") from None
    return list(d), np.array([v["val_accuracy"] for v in d.values()], dtype=float)
