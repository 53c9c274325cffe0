"""Benchmarks over a table's architectures only: ``darts-725`` and ``nb101-500``.

The shipped DARTS (725 genotypes) and NB101 (500 cells) tables cover a tiny part of their spaces, so
a method must search *within the table*. :class:`SubsetSpace` wraps the full space (its
canonicalisation, networks and encoding, so every distance works unchanged) and restricts sampling
and enumeration to the table's architectures.

**Neighbours within the table** [engineering choice]. Single-step mutations of a table member are
almost never in the table (725 random genotypes in a space of ~10^18), so G cannot be the mutation
graph. ``mutations(g)`` is instead the **symmetrised k-nearest-neighbour set** of g among the table's
architectures in the Hamming distance on the space's categorical encoding (DARTS: input and
operation of each of the 16 pairs of both cells; NB101: upper-triangular adjacency + operations),
ties broken by table order: g' is a neighbour of g when g' is among g's k nearest or g among g''s
(the union rule, so the relation is symmetric, as G needs). Every optimiser that uses
``mutations`` — the flow's graph, HOTNAS's mutation pool, regularised evolution — then moves inside
the table. The Hamming kNN is cheap (one vectorised n x n comparison) and independent of the
distance the flow weights its edges with (HOTNN by default), so the graph's topology does not
depend on the kernel being compared.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..spaces.base import SearchSpace
from .tabular import TabularBenchmark

__all__ = ["SubsetSpace", "subset_benchmark", "darts_725", "nb101_500"]


class SubsetSpace(SearchSpace):
    """The architectures of a table as a search space, inside a full space ``base``.

    Args:
        base: the full search space (canonical form, networks, encoding).
        archs: the table's architectures (any form ``base`` parses; canonicalised; isomorphic duplicates
            merged, the first kept — NB101-500 has a few).
        k: nearest neighbours per architecture before symmetrisation (module docstring).
        name: the space's name.
    """

    def __init__(self, base: SearchSpace, archs: list[str], k: int = 8, name: str | None = None):
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.base = base
        self.name = name or f"{base.name}-subset"
        canon = list(dict.fromkeys(base.canonical(a) for a in archs))  # isomorphic duplicates merged
        if len(canon) < 2:
            raise ValueError(f"a subset space needs at least 2 architectures, got {len(canon)}")
        self._archs = canon
        self._index = {a: i for i, a in enumerate(canon)}
        self.k = min(int(k), len(canon) - 1)
        E = np.stack([np.asarray(base.encoding(a)) for a in canon])           # (n, m)
        H = (E[:, None, :] != E[None, :, :]).sum(-1).astype(float)            # (n, n) Hamming
        np.fill_diagonal(H, np.inf)
        near = np.argsort(H, axis=1, kind="stable")[:, : self.k]               # ties by table order
        adj = np.zeros(H.shape, dtype=bool)
        adj[np.repeat(np.arange(len(canon)), self.k), near.ravel()] = True
        adj |= adj.T
        self._nbrs = [tuple(canon[j] for j in np.flatnonzero(row)) for row in adj]

    def canonical(self, arch: str) -> str:
        return self.base.canonical(arch)

    def sample(self, rng: np.random.Generator) -> str:
        return self._archs[int(rng.integers(len(self._archs)))]

    def mutations(self, arch: str) -> list[str]:
        """The table neighbours of ``arch`` (symmetrised Hamming kNN); ValueError off the table."""
        i = self._index.get(self.base.canonical(arch))
        if i is None:
            raise ValueError(f"{arch!r} is not one of the {len(self._archs)} architectures of {self.name!r}")
        return list(self._nbrs[i])

    def to_network(self, arch: str):
        return self.base.to_network(arch)

    def encoding(self, arch: str) -> np.ndarray:
        return self.base.encoding(arch)

    def enumerate(self) -> Iterator[str]:
        return iter(self._archs)

    def __len__(self) -> int:
        return len(self._archs)

    def __getattr__(self, item):  # to_cell, cells, cell_hash, ... of the full space
        if item.startswith("_") or item == "base":
            raise AttributeError(item)
        return getattr(self.base, item)


def subset_benchmark(table: str, base: SearchSpace, name: str, k: int = 8, path=None) -> TabularBenchmark:
    """A :class:`TabularBenchmark` over the architectures of a shipped table (``hotnas.data.load_table``)."""
    from ..data import load_table

    archs, val = load_table(table, path)
    space = SubsetSpace(base, archs, k=k, name=name)
    values: dict[str, float] = {}
    for a, v in zip(archs, val):  # an architecture listed twice (isomorphic cells): the first row is kept
        values.setdefault(space.canonical(a), float(v))
    return TabularBenchmark(values, space=space, name=name, source=f"hotnas.data:{table}")


def darts_725(k: int = 8, path=None) -> TabularBenchmark:
    """The 725 DARTS genotypes (NB301 / NASLib, CIFAR-10 validation accuracy %) as a search problem."""
    from ..spaces.darts import DartsSpace

    return subset_benchmark("darts", DartsSpace(), "darts-725", k=k, path=path)


def nb101_500(k: int = 8, path=None) -> TabularBenchmark:
    """The 500 NAS-Bench-101 cells (NASLib, CIFAR-10 validation accuracy %) as a search problem."""
    from ..spaces.nb101 import NB101Space

    return subset_benchmark("nb101", NB101Space(), "nb101-500", k=k, path=path)
