"""The surrogate hybrid of the tabular flow (``surrogate="gp"``): a GP posterior mean as the potential of the
unevaluated neighbours, so a round jumps over the *whole* neighbourhood of the occupied nodes.

A mixin of :class:`hotnas.flows.tabular.FlowOptimiser` (its state: ``values``, ``particles``, ``graph``,
the potential ``f``; the GP cache lives on the flow and is saved in its ``state_dict``). The HOTNAS GP
(:class:`hotnas.gp.DistanceGP` on the graph's distance; copula targets with ``potential="copula"``) is refitted
only when new values arrive (ML-II every ``refit_every``) and its predictions are memoised in between; the
architectures particles land on are then queried (their true value replaces the prediction).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..gp import DistanceGP
from ..optimisers.bo import TRANSFORMS, DistanceCache

__all__ = ["SurrogateHybrid"]


class SurrogateHybrid:
    """The GP-guided jump of the tabular flow (module docstring); mixed into FlowOptimiser."""

    def _surrogate_jump(self, T: float) -> None:
        nodes, index = self._local(include_unknown=True)
        unknown = [a for a in nodes if a not in self.values]
        fvals = np.array([self.f(a) if a in self.values else np.nan for a in nodes])
        if unknown:
            mu = self._gp_mean(unknown)
            for a, m in zip(unknown, mu):
                fvals[index[a]] = -m / (self.potential_scale if self.potential == "copula" else self._unit())
        if len(nodes) < 2:
            return
        space = self.graph.subgraph(nodes)
        st = self._state(index)
        self._prev = list(self.particles)
        self._apply_rule(st, space, nodes, fvals, T)
        new = [nodes[int(i)] for i in st.g]
        landed = list(dict.fromkeys(a for a in new if not self._known(a)))
        self._queue(landed)
        # a particle that landed on an architecture the budget cannot pay for steps back
        ok = set(self._pending) | set(self.values)
        self.particles = [a if a in ok else p for a, p in zip(new, self._prev)]

    def _distances(self, rows: Sequence[str], cols: Sequence[str]) -> np.ndarray:
        """Distance block through one growing cache (:class:`hotnas.optimisers.bo.DistanceCache`)."""
        if self._dcache is None:
            eng = self.graph.engine
            self._dcache = DistanceCache(eng if hasattr(eng, "pairs") else _PairsAdapter(self.graph.distances))
        return self._dcache.block(list(rows), list(cols))

    def _gp_mean(self, archs: Sequence[str]) -> np.ndarray:
        """GP posterior mean at ``archs``, in the units of the potential (values or normal scores)."""
        X = list(self.values)
        y = np.array([self.values[a] for a in X])
        y = TRANSFORMS["copula" if self.potential == "copula" else None](y)
        if len(X) < 2:
            return np.full(len(archs), float(y.mean()) if len(y) else 0.0)
        # the model changes only with the data: one fit per set of evaluations (seeded by its size,
        # so a resumed run refits identically), predictions memoised until new data arrive
        if self._gp_cache is None or self._gp_cache[0] != len(X):
            opts = {"n_restarts": 2, **self.gp_options, "seed": self._gp_seed + len(X)}
            gp = DistanceGP(**opts)
            D = self._distances(X, X)
            if self._gp_hyper is None or len(X) - self._gp_fit_at >= self.refit_every:
                gp.fit(D, y, init=self._gp_hyper)
                self._gp_hyper = dict(gp.hyperparameters_)
                self._gp_fit_at = len(X)
            else:
                gp.fit(D, y, hyperparameters=self._gp_hyper)
            self._gp_cache = (len(X), gp, {})
        _, gp, memo = self._gp_cache
        new = [a for a in dict.fromkeys(archs) if a not in memo]
        if new:
            mu, _ = gp.predict(self._distances(new, X))
            memo.update(zip(new, np.asarray(mu, dtype=float).tolist()))
        return np.array([memo[a] for a in archs])



class _PairsAdapter:
    """Gives a plain ``pairs(archs_a, archs_b)`` callable the engine interface."""

    def __init__(self, fn: Callable[[Sequence[str], Sequence[str]], np.ndarray]):
        self.pairs = fn
