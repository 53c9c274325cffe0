"""The semi-discrete space R^d x G: a finite weighted graph G and the dimension d.

A measure on R^d x G is a K-tuple of measures on R^d (spec ``semi-discrete-flow.md`` section 2).
The graph carries symmetric non-negative weights ``w(g, g')`` with zero diagonal; an edge
``g ~ g'`` exists iff ``w(g, g') > 0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .validation import nonnegative_int

__all__ = ["SemiDiscreteSpace"]


class SemiDiscreteSpace:
    """Graph G (sparse symmetric weights) times R^d.

    Parameters
    ----------
    weights : array_like or scipy.sparse matrix, shape (K, K)
        Symmetric, non-negative, finite edge weights with zero diagonal.
    dim : int, default 0
        Dimension d of the continuous factor; ``d = 0`` is a pure graph flow.
    labels : sequence of hashable, optional
        One label per node (architecture names, say); defaults to ``0..K-1``.

    Raises
    ------
    ValueError
        On NaN/inf, negative or asymmetric weights, a non-zero diagonal, a non-square matrix or
        a negative dimension. The message names the offending entry.
    """

    def __init__(self, weights: Any, dim: int = 0, labels: Sequence[Any] | None = None):
        W = sp.csr_matrix(weights, dtype=float)
        if W.shape[0] != W.shape[1]:
            raise ValueError(f"graph weights must be a square (K, K) matrix, got shape {W.shape}")
        if W.shape[0] < 1:
            raise ValueError("graph must have at least one node")
        dim = nonnegative_int("dim", dim)
        W.eliminate_zeros()
        data = W.data
        if not np.all(np.isfinite(data)):
            i, j = _first(W, ~np.isfinite(data))
            raise ValueError(f"graph weight w[{i},{j}] = {W[i, j]} is not finite; weights must be finite and >= 0")
        if np.any(data < 0):
            i, j = _first(W, data < 0)
            raise ValueError(f"graph weight w[{i},{j}] = {W[i, j]} is negative; weights must be >= 0")
        if np.any(W.diagonal() != 0):
            i = int(np.flatnonzero(W.diagonal())[0])
            raise ValueError(f"graph weight w[{i},{i}] = {W[i, i]} on the diagonal; self-loops must be 0")
        D = (W - W.T).tocoo()
        bad = np.abs(D.data) > 1e-12 * max(1.0, float(np.abs(data).max(initial=0.0)))
        if np.any(bad):
            k = int(np.flatnonzero(bad)[0])
            i, j = int(D.row[k]), int(D.col[k])
            raise ValueError(
                f"graph weights must be symmetric: w[{i},{j}] = {W[i, j]} but w[{j},{i}] = {W[j, i]}"
            )
        W.sort_indices()
        self._W = W
        self.dim = int(dim)
        K = W.shape[0]
        if labels is None:
            labels = list(range(K))
        labels = list(labels)
        if len(labels) != K:
            raise ValueError(f"got {len(labels)} labels for a graph of {K} nodes")
        self.labels = labels

    # --- basic properties -------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        """Number of nodes K."""
        return self._W.shape[0]

    @property
    def weights(self) -> sp.csr_matrix:
        """Sparse symmetric weight matrix, shape (K, K)."""
        return self._W

    @property
    def degree(self) -> np.ndarray:
        """Weighted degree sum_{g'} w(g, g'), shape (K,)."""
        return np.asarray(self._W.sum(axis=1)).ravel()

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Directed edge list (src, dst, w), every unordered edge listed in both directions."""
        C = self._W.tocoo()
        return C.row.astype(np.int64), C.col.astype(np.int64), C.data.copy()

    def neighbours(self, g: int) -> np.ndarray:
        """Neighbours of node g (sorted indices)."""
        s, e = self._W.indptr[g], self._W.indptr[g + 1]
        return self._W.indices[s:e].copy()

    def is_connected(self) -> bool:
        """Whether G is connected (a unique stationary state needs it)."""
        n, _ = connected_components(self._W, directed=False)
        return n == 1

    def require_connected(self) -> None:
        """Raise a ValueError naming the components when G is not connected."""
        n, lab = connected_components(self._W, directed=False)
        if n != 1:
            sizes = np.bincount(lab)
            raise ValueError(
                f"graph has {n} connected components (sizes {sizes.tolist()}); a unique stationary "
                "state needs a connected graph"
            )

    def __repr__(self) -> str:
        return f"SemiDiscreteSpace(K={self.n_nodes}, d={self.dim}, edges={self._W.nnz // 2})"

    # --- constructors --------------------------------------------------------------------------
    @classmethod
    def path(cls, K: int, weight: float = 1.0, dim: int = 0) -> "SemiDiscreteSpace":
        """Path graph 0 - 1 - ... - (K-1) with equal weights."""
        i = np.arange(K - 1)
        return cls._from_pairs(K, i, i + 1, weight, dim)

    @classmethod
    def cycle(cls, K: int, weight: float = 1.0, dim: int = 0) -> "SemiDiscreteSpace":
        """Cycle graph C_K with equal weights (K >= 3)."""
        if K < 3:
            raise ValueError(f"a cycle needs K >= 3 nodes, got {K}")
        i = np.arange(K)
        return cls._from_pairs(K, i, (i + 1) % K, weight, dim)

    @classmethod
    def complete(cls, K: int, weight: float = 1.0, dim: int = 0) -> "SemiDiscreteSpace":
        """Complete graph K_K with equal weights."""
        i, j = np.triu_indices(K, 1)
        return cls._from_pairs(K, i, j, weight, dim)

    @classmethod
    def random_regular(cls, K: int, degree: int, seed: int | np.random.Generator | None = 0,
                       weight: float = 1.0, dim: int = 0) -> "SemiDiscreteSpace":
        """Random ``degree``-regular graph on K nodes (networkx), connected, equal weights."""
        import networkx as nx

        rng = np.random.default_rng(seed)
        for _ in range(100):
            G = nx.random_regular_graph(degree, K, seed=int(rng.integers(2**31 - 1)))
            if nx.is_connected(G):
                break
        else:  # pragma: no cover - practically unreachable for degree >= 3
            raise ValueError(f"could not draw a connected {degree}-regular graph on {K} nodes")
        e = np.array(G.edges(), dtype=np.int64).reshape(-1, 2)
        return cls._from_pairs(K, e[:, 0], e[:, 1], weight, dim)

    @classmethod
    def from_networkx(cls, G: Any, weight: str = "weight", dim: int = 0) -> "SemiDiscreteSpace":
        """From an undirected networkx graph; node order is ``list(G.nodes)``, the labels."""
        import networkx as nx

        nodes = list(G.nodes)
        W = nx.to_scipy_sparse_array(G, nodelist=nodes, weight=weight, format="csr")
        return cls(W, dim=dim, labels=nodes)

    @classmethod
    def _from_pairs(cls, K, i, j, weight, dim):
        i = np.asarray(i)
        j = np.asarray(j)
        w = np.broadcast_to(np.asarray(weight, dtype=float), i.shape)
        W = sp.coo_matrix((np.r_[w, w], (np.r_[i, j], np.r_[j, i])), shape=(K, K)).tocsr()
        return cls(W, dim=dim)

    # --- persistence ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Plain-data description (for checkpoints)."""
        C = self._W.tocoo()
        return {"K": self.n_nodes, "dim": self.dim, "row": C.row.tolist(), "col": C.col.tolist(),
                "w": C.data.tolist(), "labels": list(self.labels)}

    @classmethod
    def from_state_dict(cls, s: dict) -> "SemiDiscreteSpace":
        W = sp.coo_matrix((s["w"], (s["row"], s["col"])), shape=(s["K"], s["K"]))
        return cls(W, dim=s["dim"], labels=s["labels"])


def _first(W: sp.csr_matrix, mask: np.ndarray) -> tuple[int, int]:
    k = int(np.flatnonzero(mask)[0])
    row = int(np.searchsorted(W.indptr, k, side="right") - 1)
    return row, int(W.indices[k])
