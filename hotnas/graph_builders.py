"""Constructions of the architecture graph G over a finite set of architectures (issue 19).

:class:`hotnas.graph.ArchitectureGraph` builds G lazily, one row at a time, from the mutation
neighbourhood. This module builds G *once* over a finite node set (an enumerable space such as
NB201's 15,625 cells, or the architectures of a table) from precomputed pairwise distances, which
makes graphs affordable that a lazy row cannot be: a k-nearest-neighbour graph in HOTNN restricted to a
mutation ball, its union with the mutation graph, weights whose length-scale is set by the spread of
the distances. The result, :class:`FixedGraph`, is an ``ArchitectureGraph`` (same interface: rows,
proposals, ``subgraph`` export), so ``get_optimiser("flow", space, graph=G)`` runs on it unchanged.

Edge sets (node indices ``i < j``, arrays of shape (E,)):

* :func:`mutation_pairs` — pairs at mutation distance 1 (``radius=1``) or exactly 2 (``radius=2``,
  the pattern of A^2 minus A and I, A the mutation adjacency), for a node set closed under mutation;
* :func:`encoding_knn_pairs` — for a table (not closed under mutation): every node's ``k`` nearest
  nodes in the Hamming distance of the space's categorical encoding (the fewest-mutations analogue
  of the mutation graph on the table), union-symmetrised;
* :func:`knn_select` — among candidate pairs with distances d, each node's ``k`` nearest; an edge is
  kept when either end chose it (union symmetrisation); pairs with d <= ``min_distance`` (computationally
  identical networks, d = 0) are not candidates.

Weights [derived; documented options, not a paper's formula]. The Laplace kernel
``w = exp(-d / l)`` is used with ``l = s / beta``, s the **within-row spread** of the distances on the
graph's edges (:func:`within_row_spread`),

    s^2 = (1/K) sum_g (1/m_g) sum_{g' ~ g} (d(g, g') - dbar_g)^2,      dbar_g = (1/m_g) sum_{g' ~ g} d(g, g'),

so that ``beta`` is scale-free: a particle at g proposes g' with probability
``w(g, g') / deg(g) = exp(-beta (d(g, g') - dbar_g) / s) / Z_g`` — only the deviation of d from the row mean
enters (a common factor exp(-beta dbar_g / s) cancels in the ratio), and in units of s the log-weights
of a row have standard deviation ``|beta|`` whatever the distance (HOTNN in [0, 0.3], TW in [0, 2]).
beta = 0 is the uniform graph, beta > 0 prefers near neighbours, beta < 0 far ones (``"novelty"``).

Weights are then **mean-normalised** (``normalise=True``): ``w <- w / mean_edges(w)``. Derivation: the
jump rate of every law of :mod:`sdot.rates` is linear in w (``k = T w exp((f_g - f_g')/2T)`` for glauber),
so a constant factor lambda on all weights is the same chain as ``dt -> lambda dt``; without the
normalisation, comparing two weightings compares two time steps as well as two shapes (the
constant-l HOTNN weights of the defaults have mean about exp(-1.2) on NB201, the issue's
``lengthscale=1e6`` "uniform" graph mean 1). After normalisation every construction has the same mean
rate per edge and the comparison is between shapes only.

    >>> import numpy as np
    >>> i, j, d = np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([0.0, 1.0, 1.0])
    >>> round(within_row_spread(i, j, d, 3), 4)
    0.4082
    >>> kernel_weights(d, beta=0.0, spread=1.0).tolist()
    [1.0, 1.0, 1.0]
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from .graph import ArchitectureGraph
from .spaces.base import SearchSpace

__all__ = ["PoolSpace", "FixedGraph", "mutation_pairs", "encoding_knn_pairs", "knn_select", "union_pairs",
           "within_row_spread", "kernel_weights", "cached_pair_distances", "build_fixed_graph"]


class PoolSpace(SearchSpace):
    """A search space restricted to a finite pool of architectures (a table's rows).

    Canonical strings, networks and encodings are those of ``base``; ``sample`` draws uniformly from the
    pool and ``enumerate`` lists it; ``mutations`` are the pool members adjacent in ``neighbours``
    (node index -> neighbour indices), empty when no adjacency is given.

    Raises:
        ValueError: on an empty pool, or (``canonical``) on an architecture outside the pool.
    """

    def __init__(self, base: SearchSpace, pool: Sequence[str], neighbours: dict[int, Sequence[int]] | None = None,
                 name: str | None = None):
        if not isinstance(base, SearchSpace):
            raise TypeError(f"base must be a SearchSpace, got {type(base).__name__}")
        pool = list(dict.fromkeys(base.canonical(a) for a in pool))
        if not pool:
            raise ValueError("a PoolSpace needs at least one architecture")
        self.base = base
        self.pool = pool
        self.index = {a: k for k, a in enumerate(pool)}
        self._nbrs = neighbours
        self.name = name or f"{base.name}-pool{len(pool)}"

    def canonical(self, arch: str) -> str:
        c = self.base.canonical(arch)
        if c not in self.index:
            raise ValueError(f"architecture {arch!r} is not in the pool of {self.name!r}")
        return c

    def sample(self, rng: np.random.Generator) -> str:
        return self.pool[int(rng.integers(len(self.pool)))]

    def mutations(self, arch: str) -> list[str]:
        if self._nbrs is None:
            return []
        return [self.pool[k] for k in self._nbrs.get(self.index[self.canonical(arch)], ())]

    def to_network(self, arch: str):
        return self.base.to_network(arch)

    def encoding(self, arch: str) -> np.ndarray:
        return self.base.encoding(arch)

    def enumerate(self):
        return iter(self.pool)

    def __len__(self) -> int:
        return len(self.pool)


# ------------------------------------------------------------------------------------------ edge sets
def _check_pairs(i: np.ndarray, j: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.asarray(i, dtype=np.int64).reshape(-1), np.asarray(j, dtype=np.int64).reshape(-1)
    if i.shape != j.shape:
        raise ValueError(f"pair arrays differ in shape: {i.shape} and {j.shape}")
    if i.size and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n):
        raise ValueError(f"pair indices must lie in [0, {n}), got range [{min(i.min(), j.min())}, "
                         f"{max(i.max(), j.max())}]")
    if np.any(i == j):
        raise ValueError(f"a pair joins node {int(i[np.flatnonzero(i == j)[0]])} to itself")
    return i, j


def _adjacency(i: np.ndarray, j: np.ndarray, n: int) -> sp.csr_matrix:
    A = sp.coo_matrix((np.ones(2 * len(i)), (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()
    A.data[:] = 1.0  # duplicates summed: back to a 0/1 pattern
    return A


def mutation_pairs(space: SearchSpace, archs: Sequence[str], radius: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) of ``archs`` at mutation distance exactly ``radius`` (1 or 2).

    ``archs`` must be closed under ``space.mutations`` (every mutation of a node is a node), as an
    enumerated space is. Radius 2 is the off-diagonal pattern of A^2 outside A (A the symmetric
    mutation adjacency): pairs two mutations apart and not one.

    Raises:
        ValueError: on a radius other than 1 or 2, or a mutation that leaves ``archs`` (naming it).
    """
    if radius not in (1, 2):
        raise ValueError(f"radius must be 1 or 2, got {radius!r}")
    index = {a: k for k, a in enumerate(archs)}
    rows, cols = [], []
    for k, a in enumerate(archs):
        for m in space.mutations(a):
            h = index.get(m)
            if h is None:
                raise ValueError(f"mutation {m!r} of {a!r} is not among the nodes; the node set must be closed "
                                 "under mutation (use encoding_knn_pairs for a table)")
            rows.append(k)
            cols.append(h)
    n = len(archs)
    A = _adjacency(np.array(rows), np.array(cols), n)
    if radius == 2:
        A2 = (A @ A).tocsr()
        A2.data[:] = 1.0
        A = (A2 - A.multiply(A2)).tocsr()
        A.setdiag(0)
        A.eliminate_zeros()
    U = sp.triu(A, k=1).tocoo()
    order = np.lexsort((U.col, U.row))
    return U.row[order].astype(np.int64), U.col[order].astype(np.int64)


def knn_select(i: np.ndarray, j: np.ndarray, d: np.ndarray, n: int, k: int,
               min_distance: float = 0.0) -> np.ndarray:
    """Boolean mask over candidate pairs: kept when it is among the ``k`` nearest candidates of i or of j.

    ``(i, j, d)`` are candidate pairs (each listed once) and their distances; a pair with
    ``d <= min_distance`` is never kept (d = 0: computationally identical networks). Ties are broken
    by the other end's index. Vectorised: one lexsort over both orientations.

    Raises:
        ValueError: on ``k < 1`` or mismatched shapes.
    """
    i, j = _check_pairs(i, j, n)
    d = np.asarray(d, dtype=float).reshape(-1)
    if d.shape != i.shape:
        raise ValueError(f"distances have shape {d.shape}, pairs {i.shape}")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    E = len(i)
    src, dst = np.r_[i, j], np.r_[j, i]
    dd = np.r_[d, d]
    eid = np.r_[np.arange(E), np.arange(E)]
    ok = dd > min_distance
    src, dst, dd, eid = src[ok], dst[ok], dd[ok], eid[ok]
    order = np.lexsort((dst, dd, src))
    src, eid = src[order], eid[order]
    start = np.searchsorted(src, src, side="left")
    rank = np.arange(len(src)) - start
    keep = np.zeros(E, dtype=bool)
    keep[eid[rank < k]] = True
    return keep


def encoding_knn_pairs(space: SearchSpace, archs: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The table analogue of the mutation graph: each node's ``k`` nearest in encoding Hamming distance.

    d_H(a, b) = number of positions where ``space.encoding`` differs (a lower bound on the mutations
    between a and b in a categorical encoding). Union-symmetrised, ties broken by index; pairs at
    d_H = 0 (one encoding for two pool entries) are kept out as in :func:`knn_select`.
    """
    E = np.array([np.asarray(space.encoding(a)).reshape(-1) for a in archs])
    n = len(archs)
    iu = np.triu_indices(n, 1)
    H = np.zeros(len(iu[0]))
    step = 4096
    for s in range(0, n, step):  # blocks of rows keep the (rows, n, dims) comparison small
        blk = (E[s:s + step, None, :] != E[None, :, :]).sum(-1)
        rows = (iu[0] >= s) & (iu[0] < s + step)
        H[rows] = blk[iu[0][rows] - s, iu[1][rows]]
    i, j = iu[0].astype(np.int64), iu[1].astype(np.int64)
    keep = knn_select(i, j, H, n, k)
    return i[keep], j[keep]


def union_pairs(*edge_sets: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The union of edge sets (each pairs i < j), sorted, duplicates removed."""
    i = np.concatenate([np.asarray(e[0], dtype=np.int64) for e in edge_sets])
    j = np.concatenate([np.asarray(e[1], dtype=np.int64) for e in edge_sets])
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    key = np.unique(np.stack([lo, hi], 1), axis=0)
    return key[:, 0], key[:, 1]


# ------------------------------------------------------------------------------------------ weights
def within_row_spread(i: np.ndarray, j: np.ndarray, d: np.ndarray, n: int) -> float:
    """Pooled within-row standard deviation s of the edge distances (module docstring).

    ``s^2 = mean over nodes with >= 1 edge of the row variance of d(g, .)``, every undirected edge
    counted in both rows. Zero when every row is constant (Hamming on NB201's mutation graph)."""
    i, j = _check_pairs(i, j, n)
    d = np.asarray(d, dtype=float).reshape(-1)
    src, dd = np.r_[i, j], np.r_[d, d]
    m = np.bincount(src, minlength=n).astype(float)
    s1 = np.bincount(src, weights=dd, minlength=n)
    s2 = np.bincount(src, weights=dd * dd, minlength=n)
    has = m > 0
    var = s2[has] / m[has] - (s1[has] / m[has]) ** 2
    s = float(np.sqrt(max(0.0, float(np.mean(np.maximum(var, 0.0))))))
    # rounding leaves ~1e-17 on constant rows: below 1e-9 of the largest distance the rows are constant
    return 0.0 if s <= 1e-9 * float(np.max(np.abs(dd), initial=0.0)) else s


def kernel_weights(d: np.ndarray, beta: float, spread: float, normalise: bool = True,
                   min_weight: float = 1e-12) -> np.ndarray:
    """Weights ``w = exp(-beta d / s)`` (Laplace kernel with l = s / beta), mean-normalised.

    ``beta = 0`` (or ``s = 0``) gives uniform weights 1. With ``normalise`` the weights are divided by
    their mean over the edges given (module docstring: a common factor is a time rescaling). The
    exponent is shifted by its minimum before exponentiating (no overflow for beta < 0); weights are
    floored at ``min_weight`` times their maximum.

    Raises:
        ValueError: on non-finite or negative distances, a non-finite beta or a negative spread.
    """
    d = np.asarray(d, dtype=float)
    if d.size and (not np.all(np.isfinite(d)) or d.min() < 0):
        raise ValueError("distances must be finite and >= 0")
    if not np.isfinite(beta):
        raise ValueError(f"beta must be finite, got {beta!r}")
    if not np.isfinite(spread) or spread < 0:
        raise ValueError(f"spread must be finite and >= 0, got {spread!r}")
    if beta == 0 or spread == 0 or d.size == 0:
        return np.ones_like(d)
    z = -beta * d / spread
    w = np.exp(z - z.max())
    w = np.maximum(w, min_weight)
    return w / w.mean() if normalise else w * np.exp(z.max())


# ------------------------------------------------------------------------------------------ distances
def cached_pair_distances(engine: Any, archs: Sequence[str], i: np.ndarray, j: np.ndarray,
                          path: str | Path | None = None, chunk: int = 100_000, log=None) -> np.ndarray:
    """d(archs[i_e], archs[j_e]) for every pair, through ``engine.pairs`` in chunks, cached on disk.

    The cache file (``.npz``) stores the pairs and the values; it is used only when its pairs equal
    the ones asked (and written after computing). ``engine`` is a
    :class:`~hotnas.distances.engine.PairwiseDistances` (its own caches persist across calls)."""
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    if path is not None:
        path = Path(path)
        if path.is_file():
            z = np.load(path)
            if z["i"].shape == i.shape and np.array_equal(z["i"], i) and np.array_equal(z["j"], j):
                return z["d"]
    out = np.empty(len(i))
    for s in range(0, len(i), chunk):
        a = [archs[t] for t in i[s:s + chunk]]
        b = [archs[t] for t in j[s:s + chunk]]
        out[s:s + chunk] = engine.pairs(a, b)
        if log is not None:
            log(f"  {min(s + chunk, len(i))}/{len(i)} pairs")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, i=i, j=j, d=out)
    return out


def pairs_digest(i: np.ndarray, j: np.ndarray) -> str:
    """A short digest of an edge set (cache file names)."""
    h = hashlib.sha1(np.asarray(i, dtype=np.int64).tobytes())
    h.update(np.asarray(j, dtype=np.int64).tobytes())
    return h.hexdigest()[:12]


# ------------------------------------------------------------------------------------------ the graph
class FixedGraph(ArchitectureGraph):
    """An :class:`~hotnas.graph.ArchitectureGraph` whose rows are given (edges i < j with weights w).

    Rows are read from a symmetric CSR matrix over ``archs`` (node k = ``archs[k]``, canonical), so
    ``neighbours``, ``degree``, ``sample_neighbour`` and ``subgraph`` behave as for a lazy graph, and the
    flow optimiser takes it as ``graph=``. ``distance`` (an engine, method name or callable) is kept for
    users of :attr:`engine` (the GP surrogate); the weights do not depend on it.

    Raises:
        ValueError: on non-positive or non-finite weights, bad pair indices, or duplicate nodes;
            KeyError (at use) for an architecture that is not a node.
    """

    def __init__(self, space: SearchSpace, archs: Sequence[str], i: np.ndarray, j: np.ndarray, w: np.ndarray,
                 distance: Any = "hotnn", label: str = "fixed", **options: Any):
        super().__init__(space, distance=distance, **options)
        nodes = [space.canonical(a) for a in archs]
        if len(set(nodes)) != len(nodes):
            raise ValueError("FixedGraph nodes must be distinct architectures")
        n = len(nodes)
        i, j = _check_pairs(i, j, n)
        w = np.asarray(w, dtype=float).reshape(-1)
        if w.shape != i.shape:
            raise ValueError(f"weights have shape {w.shape}, pairs {i.shape}")
        if w.size and (not np.all(np.isfinite(w)) or w.min() <= 0):
            raise ValueError("graph weights must be finite and > 0")
        W = sp.coo_matrix((np.r_[w, w], (np.r_[i, j], np.r_[j, i])), shape=(n, n)).tocsr()
        W.sum_duplicates()
        self._W = W
        self.nodes = nodes
        self.node_index = {a: k for k, a in enumerate(nodes)}
        self.label = label
        self.n_edges = int(len(i))

    def _row(self, arch: str):
        hit = self._rows.get(arch)
        if hit is not None:
            return hit
        try:
            k = self.node_index[arch]
        except KeyError:
            raise KeyError(f"{arch!r} is not a node of the graph {self.label!r}") from None
        lo, hi = self._W.indptr[k], self._W.indptr[k + 1]
        row = (tuple(self.nodes[t] for t in self._W.indices[lo:hi]), self._W.data[lo:hi].copy())
        self._rows[arch] = row
        self.stats["rows"] += 1
        return row

    def mean_degree(self) -> float:
        """Mean number of neighbours per node."""
        return 2.0 * self.n_edges / max(1, len(self.nodes))

    def __repr__(self) -> str:
        return (f"FixedGraph({self.label!r}, space={self.space.name!r}, nodes={len(self.nodes)}, "
                f"edges={self.n_edges})")


def build_fixed_graph(space: SearchSpace, archs: Sequence[str], i: np.ndarray, j: np.ndarray, d: np.ndarray | None,
                      beta: float = 0.0, normalise: bool = True, spread: float | None = None,
                      label: str = "fixed", distance: Any = "hotnn") -> FixedGraph:
    """A :class:`FixedGraph` with weights ``kernel_weights(d, beta, s)``; s = :func:`within_row_spread`
    of ``d`` on these edges unless ``spread`` is given; ``d=None`` (or beta = 0) gives uniform weights 1."""
    if d is None or beta == 0:
        w = np.ones(len(np.asarray(i)))
    else:
        s = within_row_spread(i, j, d, len(archs)) if spread is None else float(spread)
        w = kernel_weights(d, beta, s, normalise=normalise)
    return FixedGraph(space, archs, i, j, w, distance=distance, label=label)
