"""A growing dense matrix of the distances among every architecture met so far (NaN = not yet computed).

Searches that refit a model on distances (HOTNAS's GP, the surrogate flows) ask for blocks
``D[rows, cols]`` again and again as they grow; only the pairs never seen are sent to the engine, each
unordered pair once, and the matrix stays symmetric with a zero diagonal. The engine's own caches (of
networks and cell distances) can be shared by several searches; this matrix belongs to one search.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["DistanceCache"]


class DistanceCache:
    """Distances among every architecture met so far, in one growing dense matrix (NaN = unknown).

    Args:
        engine: anything with ``pairs(archs_a, archs_b) -> np.ndarray`` (element-wise distances),
            such as :class:`hotnas.distances.engine.PairwiseDistances`.
    Attributes:
        seconds: wall-clock spent in the engine.
        n_computed: pairs sent to the engine.
    """

    def __init__(self, engine: Any):
        if not hasattr(engine, "pairs"):
            raise TypeError(f"a distance engine needs a pairs(archs_a, archs_b) method; got {type(engine).__name__}")
        self.engine = engine
        self.index: dict[str, int] = {}
        self.archs: list[str] = []
        self._M = np.full((0, 0), np.nan)
        self.seconds = 0.0
        self.n_computed = 0

    def _indices(self, archs: Sequence[str]) -> np.ndarray:
        new = [a for a in dict.fromkeys(archs) if a not in self.index]
        if new:
            n0, n1 = len(self.archs), len(self.archs) + len(new)
            if n1 > self._M.shape[0]:  # grow geometrically: amortised O(1) copies per architecture
                cap = max(n1, 2 * self._M.shape[0], 64)
                M = np.full((cap, cap), np.nan)
                M[:n0, :n0] = self._M[:n0, :n0]
                self._M = M
            for k, a in enumerate(new):
                self.index[a] = n0 + k
                self._M[n0 + k, n0 + k] = 0.0
            self.archs.extend(new)
        return np.fromiter((self.index[a] for a in archs), dtype=np.int64, count=len(archs))

    def block(self, rows: Sequence[str], cols: Sequence[str]) -> np.ndarray:
        """(len(rows), len(cols)) distances; computes only the pairs never seen."""
        ri, ci = self._indices(rows), self._indices(cols)
        sub = self._M[np.ix_(ri, ci)]
        miss = np.isnan(sub)
        if miss.any():
            i, j = np.nonzero(miss)
            a, b = ri[i], ci[j]
            lo, hi = np.minimum(a, b), np.maximum(a, b)
            key = np.unique(lo * self._M.shape[0] + hi)  # each unordered pair once
            lo, hi = key // self._M.shape[0], key % self._M.shape[0]
            t0 = time.perf_counter()
            vals = np.asarray(self.engine.pairs([self.archs[k] for k in lo], [self.archs[k] for k in hi]), dtype=float)
            self.seconds += time.perf_counter() - t0
            self.n_computed += len(lo)
            if vals.shape != lo.shape or not np.all(np.isfinite(vals)):
                raise ValueError("the distance engine returned a wrong shape or non-finite distances")
            self._M[lo, hi] = vals
            self._M[hi, lo] = vals
            sub = self._M[np.ix_(ri, ci)]
        return sub
