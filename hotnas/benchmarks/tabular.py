"""Tabular benchmarks: published tables of architecture -> validation (and test) metric.

A query is a table look-up: it returns the validation metric (what a search may see) and carries
the test metric for reporting only; it costs 1 (or a per-row cost column). The table knows its
optimum, so validation regret is exact, and the test value of the best-validation architecture.

Any table plugs in through :meth:`TabularBenchmark.from_csv`: name the architecture, validation and
(optional) test columns, and give the search space (or just a parser) that canonicalises the
architecture strings. :class:`NB201Benchmark` reads the NAS-Bench-201 CSV shipped in
:mod:`hotnas.data` (or any copy of it, plain or gzip).

    >>> bench = NB201Benchmark()                                          # doctest: +SKIP
    >>> ev = bench.query(bench.best_arch); ev.value == bench.optimum     # doctest: +SKIP
    True
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from ..spaces.base import SearchSpace
from .base import Benchmark, Evaluation

__all__ = ["TabularBenchmark", "NB201Benchmark", "TableSpace", "UnknownArchitectureError", "read_table",
           "default_data_dir"]


class UnknownArchitectureError(LookupError):
    """A queried architecture is valid for the space but absent from the table."""

    def __str__(self) -> str:  # LookupError would print the repr of its argument
        return str(self.args[0]) if self.args else ""


def default_data_dir() -> Path:
    """The folder of the tables shipped inside the package (:mod:`hotnas.data`)."""
    from ..data import DATA_DIR

    return DATA_DIR


class TableSpace(SearchSpace):
    """The architectures of a table as a search space: sampling and enumeration, no mutations.

    ``parser`` (str -> canonical str, raising ValueError on a malformed string) is how a new
    encoding plugs in; by default strings are compared after stripping whitespace.
    """

    name = "table"

    def __init__(self, archs: list[str], parser: Callable[[str], str] | None = None):
        self._parser = parser
        self._archs = list(archs)

    def canonical(self, arch: str) -> str:
        if not isinstance(arch, str):
            raise ValueError(f"architecture must be a string, got {type(arch).__name__}")
        return self._parser(arch) if self._parser is not None else arch.strip()

    def sample(self, rng: np.random.Generator) -> str:
        return self._archs[int(rng.integers(len(self._archs)))]

    def mutations(self, arch: str) -> list[str]:
        raise NotImplementedError("a bare table has no mutation structure; pass the SearchSpace of its architectures")

    def to_network(self, arch: str):
        raise NotImplementedError("a bare table has no networks; pass the SearchSpace of its architectures")

    def enumerate(self) -> Iterator[str]:
        return iter(self._archs)

    def __len__(self) -> int:
        return len(self._archs)


def _number(raw: object, column: str, row: int, arch: str, source: str) -> float:
    where = f"{source}, row {row} (architecture {arch!r})"
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        raise ValueError(f"{where}: missing value in column {column!r}")
    try:
        v = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: column {column!r} holds {raw!r}, which is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{where}: column {column!r} holds {raw!r}; a finite number is required")
    return v


def read_table(path: str | os.PathLike, arch_column: str, value_column: str, test_column: str | None = None,
               cost_column: str | None = None
               ) -> tuple[dict[str, float], dict[str, float] | None, dict[str, float] | None]:
    """Read architecture -> value (and test, cost) mappings from a CSV with a header row.

    Raises:
        FileNotFoundError; ValueError naming the file, row and column of a missing column, a missing
        or non-numeric value, or an architecture listed twice.
    """
    from ..data import open_text

    path = Path(path)
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        for c in (arch_column, value_column, test_column, cost_column):
            if c is not None and c not in header:
                raise ValueError(f"{path}: no column {c!r}; the columns are {header}")
        values: dict[str, float] = {}
        tests: dict[str, float] | None = {} if test_column else None
        costs: dict[str, float] | None = {} if cost_column else None
        rows: dict[str, int] = {}
        for row, rec in enumerate(reader):
            arch = rec[arch_column]
            if arch is None or arch.strip() == "":
                raise ValueError(f"{path}, row {row}: missing architecture in column {arch_column!r}")
            if arch in rows:
                raise ValueError(f"{path}: duplicate architecture {arch!r} in rows {rows[arch]} and {row}")
            rows[arch] = row
            values[arch] = _number(rec[value_column], value_column, row, arch, str(path))
            if tests is not None:
                tests[arch] = _number(rec[test_column], test_column, row, arch, str(path))
            if costs is not None:
                costs[arch] = _number(rec[cost_column], cost_column, row, arch, str(path))
    return values, tests, costs


class TabularBenchmark(Benchmark):
    """A benchmark backed by a table of architecture -> validation metric (higher is better).

    Args:
        values: mapping architecture -> validation metric (keys are canonicalised by ``space``).
        tests: optional mapping architecture -> test metric (same keys as ``values``).
        space: the SearchSpace of the architectures; by default a :class:`TableSpace` of the keys.
        costs: optional mapping architecture -> query cost (default 1 per query).
        name: benchmark name.

    Raises:
        ValueError: on an empty table, an architecture the space rejects, two keys that are the same
            architecture, a non-finite metric, or test keys that differ from the value keys.
    """

    def __init__(self, values: Mapping[str, float], tests: Mapping[str, float] | None = None,
                 space: SearchSpace | None = None, costs: Mapping[str, float] | None = None,
                 name: str = "tabular", source: str = "table"):
        super().__init__()
        if not values:
            raise ValueError(f"{source}: the table is empty")
        self.name = name
        self.source = source
        self.space = space if space is not None else TableSpace(list(values))
        index: dict[str, int] = {}
        archs: list[str] = []
        for row, arch in enumerate(values):
            try:
                c = self.space.canonical(arch)
            except ValueError as e:
                raise ValueError(f"{source}, row {row}: architecture {arch!r} is not valid for "
                                 f"search space {self.space.name!r}: {e}") from None
            if c in index:
                first = archs[index[c]]
                raise ValueError(f"{source}: duplicate architecture {c!r} in rows {index[c]} ({first!r}) "
                                 f"and {row} ({arch!r})")
            index[c] = row
            archs.append(arch)
        self._index = index
        self.archs = list(index)
        self.values = np.array([_number(values[a], "value", i, a, source) for i, a in enumerate(archs)])
        self.tests: np.ndarray | None = None
        if tests is not None:
            extra = set(tests) - set(values)
            missing = [a for a in archs if a not in tests]
            if missing or extra:
                bad = missing[0] if missing else sorted(extra)[0]
                raise ValueError(f"{source}: test metrics do not match the validation metrics "
                                 f"({len(missing)} missing, {len(extra)} extra; e.g. {bad!r})")
            self.tests = np.array([_number(tests[a], "test", i, a, source) for i, a in enumerate(archs)])
        self.costs = (np.ones(len(archs)) if costs is None else
                      np.array([_number(costs.get(a), "cost", i, a, source) for i, a in enumerate(archs)]))
        self._best = int(np.argmax(self.values))  # first row among ties

    # ------------------------------------------------------------------ construction from files
    @classmethod
    def from_csv(cls, path: str | os.PathLike, arch_column: str, value_column: str,
                 test_column: str | None = None, space: SearchSpace | None = None,
                 parser: Callable[[str], str] | None = None, cost_column: str | None = None,
                 name: str | None = None) -> "TabularBenchmark":
        """A benchmark from a CSV with a header row (see :func:`read_table`).

        Args:
            space: the SearchSpace of the architecture strings; or ``parser`` (str -> canonical str)
                for a bare :class:`TableSpace`.
        """
        values, tests, costs = read_table(path, arch_column, value_column, test_column, cost_column)
        if space is None:
            space = TableSpace(list(values), parser)
        return cls(values, tests, space=space, costs=costs, name=name or Path(path).stem, source=str(path))

    # ------------------------------------------------------------------ queries
    def _evaluate(self, arch: str) -> Evaluation:
        i = self._index.get(arch)
        if i is None:
            raise UnknownArchitectureError(
                f"architecture {arch!r} is not in benchmark {self.name!r} ({len(self.archs)} architectures)")
        test = None if self.tests is None else float(self.tests[i])
        return Evaluation(arch=arch, value=float(self.values[i]), test=test, cost=float(self.costs[i]))

    def lookup(self, arch: str) -> Evaluation:
        """The table row of ``arch`` without counting a query (for analysis, never for search)."""
        return self._evaluate(self.space.canonical(arch))

    def __contains__(self, arch: str) -> bool:
        try:
            return self.space.canonical(arch) in self._index
        except ValueError:
            return False

    def __len__(self) -> int:
        return len(self.archs)

    @property
    def optimum(self) -> float:
        """Best validation value in the table."""
        return float(self.values[self._best])

    @property
    def best_arch(self) -> str:
        """Architecture with the best validation value (first in table order among ties)."""
        return self.archs[self._best]

    def test_of_best(self) -> float | None:
        """Test value of the best-validation architecture (None without a test column)."""
        return None if self.tests is None else float(self.tests[self._best])

    def regret(self, value: float) -> float:
        """Validation regret of a validation value: optimum - value."""
        return self.optimum - float(value)


class NB201Benchmark(TabularBenchmark):
    """NAS-Bench-201 (CIFAR-10 by default) from the CSV format shipped in :mod:`hotnas.data`.

    Columns ``arch_str`` (official string), ``val_acc`` (searched on), ``test_acc`` (reported).

    Args:
        path: the CSV (plain or ``.gz``); default the shipped ``nb201_cifar10.csv.gz``.
    """

    def __init__(self, path: str | os.PathLike | None = None, value_column: str = "val_acc",
                 test_column: str | None = "test_acc", name: str = "nb201-cifar10"):
        from ..spaces.nb201 import NB201Space

        from ..data import table_path

        path = Path(path) if path is not None else table_path("nb201")
        values, tests, _ = read_table(path, "arch_str", value_column, test_column)
        super().__init__(values, tests, space=NB201Space(), name=name, source=str(path))
