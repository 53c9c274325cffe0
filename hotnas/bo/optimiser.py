"""HOTNAS-style Bayesian optimisation: a GP on a distance kernel, knowledge gradient over a mutation pool.

The ask/tell optimiser, assembled from the swappable pieces of :mod:`hotnas.bo` [spec hotnn-and-bo.md,
Section 6], registered as ``"hotnas"`` (``get_optimiser("hotnas", space)``; the registration is lazy, in
:mod:`hotnas.optimisers.bo`, so this module may import :mod:`hotnas.optimisers.base` without a cycle).
After ``n_init`` uniform samples, each ask:

1. *model* — fits :class:`~hotnas.bo.gp.DistanceGP` to the transformed observations
   (:mod:`hotnas.bo.transforms`; ML-II every ``refit_every`` new observations, warm-started from the last
   fit; otherwise the last hyperparameters are kept);
2. *candidates* — draws a pool (:class:`~hotnas.bo.candidates.CandidatePool`: mutations of the top-k plus
   random architectures; any :class:`~hotnas.bo.candidates.CandidateGenerator` via ``candidates=``);
3. *acquisition* — scores the pool (:mod:`hotnas.bo.acquisition`: ``kg`` by default, exact, its maximum
   over the pool and the observed points; ``ei``; ``lcb``; or an instance) and proposes the best; a batch
   of q > 1 by :func:`~hotnas.bo.batch.kriging_believer`.

The distance is any method of :class:`hotnas.distances.engine.PairwiseDistances` (``hotnn``,
``otmann``, ``tw``, ...), or any object with ``pairs(archs_a, archs_b) -> (n,)``. Distances are kept
in a dense matrix over the architectures met so far (:class:`~hotnas.distances.cache.DistanceCache`);
only pairs never seen are sent to the engine, whose own cache can be shared by several searches
(pass ``engine=``).

This is a HOTNN-style hierarchical OT kernel inside a KG-driven BO loop, reconstructed from the
HOTNAS abstract and poster; it does not claim to reproduce HOTNAS.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from sdot.validation import nonnegative_int, one_of, positive_int

from ..distances.cache import DistanceCache
from ..optimisers.base import Optimiser
from ..optimisers.random import sample_unseen
from ..spaces.base import SearchSpace
from .acquisition import get_acquisition
from .batch import kriging_believer
from .candidates import CandidateGenerator, CandidatePool
from .gp import DistanceGP
from .posterior import Posterior, gp_posterior
from .transforms import get_transform

__all__ = ["HotnasBO", "KG_OVER"]

KG_OVER = ("pool+observed", "pool")


class HotnasBO(Optimiser):
    """GP + acquisition over a candidate pool, behind the ask/tell interface.

    Args:
        space: the search space.
        seed: seed or Generator (initial design, pools, ML-II restarts).
        distance: engine method when ``engine`` is None ("hotnn", "otmann", "tw", "hamming", ...).
        engine: a distance engine to use (and share between searches); built lazily otherwise.
        distance_options: options of the engine's method (e.g. ``{"mu": 0.5}``).
        kernel: "laplace" | "rbf" (or a Kernel); psd: "clip" | "jitter" | "raise" | "cap".
        acquisition: "kg" | "ei" | "lcb" (or an Acquisition); acquisition_options: its options (``xi``, ``beta``).
        kg_over: "pool+observed" (an acquisition that needs the covariance — the KG — takes its maximum over
            the pool and the observed points) or "pool".
        n_init: uniform samples before the first model.
        budget: the query budget, if known, checked against ``n_init``.
        pool_size, top_k, mutations_per_parent, n_random, random_refresh: the default candidate pool.
        candidates: a :class:`~hotnas.bo.candidates.CandidateGenerator` replacing the default pool (the
            pool options are then unused).
        refit_every: new observations between ML-II refits of the hyperparameters.
        n_restarts: random starts per ML-II fit (plus the warm start).
        transform: "copula" (default: the GP models the normal scores of the ranks of the values) or
            None (the values themselves, standardised); :mod:`hotnas.bo.transforms`. In
            experiments/studies/bo_nb201.py (10 seeds) the mean regret at 100 / 200 queries was 0.160 / 0.077
            without it and 0.000-0.089 / 0.000 with it (three runs, while the HOTNN implementation was
            still changing).
        gp_options: further DistanceGP arguments (bounds, max_jitter, ...).

    Attributes:
        timings: seconds spent on distances, GP fits, and posteriors + acquisitions (each exclusive of
            the others; not part of the state).
    """

    name = "hotnas"

    def __init__(self, space: SearchSpace, seed: int | np.random.Generator | None = 0, distance: str = "hotnn",
                 engine: Any = None, distance_options: dict[str, Any] | None = None, kernel: str = "laplace",
                 psd: str = "clip", acquisition: str = "kg", acquisition_options: dict[str, Any] | None = None,
                 kg_over: str = "pool+observed", n_init: int = 20, budget: int | None = None,
                 pool_size: int = 100, top_k: int = 10, mutations_per_parent: int | None = None,
                 n_random: int = 10, random_refresh: int = 10, refit_every: int = 5, n_restarts: int = 2,
                 transform: str | None = "copula", gp_options: dict[str, Any] | None = None,
                 candidates: CandidateGenerator | None = None):
        super().__init__(space, seed)
        self.n_init = positive_int("n_init", n_init)
        self.refit_every = positive_int("refit_every", refit_every)
        self.n_restarts = nonnegative_int("n_restarts", n_restarts)
        self.kg_over = one_of("kg_over", kg_over, KG_OVER)
        get_transform(transform)  # unknown names fail here, not at the first ask
        self.transform = transform
        if budget is not None:
            self.check_budget(budget)
        self.distance = distance
        self.distance_options = dict(distance_options or {})
        self._engine = engine
        self._cache: DistanceCache | None = None
        self.kernel = kernel
        self.psd = psd
        self.acquisition = get_acquisition(acquisition, **(acquisition_options or {}))
        self.pool: CandidateGenerator = candidates if candidates is not None else CandidatePool(
            space, size=pool_size, top_k=top_k, mutations_per_parent=mutations_per_parent, n_random=n_random,
            random_refresh=random_refresh)
        self.gp_options = dict(gp_options or {})
        DistanceGP(kernel=kernel, psd=psd, n_restarts=n_restarts, **self.gp_options)  # validate options now
        self.hyperparameters: dict[str, float] | None = None
        self._fit_n = 0
        self.timings = {"distances": 0.0, "fit": 0.0, "acquisition": 0.0}

    # ------------------------------------------------------------------ plumbing
    def check_budget(self, budget: int) -> None:
        """Raise a ValueError when ``budget`` cannot even hold the initial design."""
        if budget < self.n_init:
            raise ValueError(f"budget {budget} is smaller than the initial design n_init={self.n_init}; "
                             f"lower n_init or raise the budget")

    @property
    def cache(self) -> DistanceCache:
        if self._cache is None:
            if self._engine is None:
                from ..distances.engine import PairwiseDistances

                self._engine = PairwiseDistances(self.space, method=self.distance, **self.distance_options)
            self._cache = DistanceCache(self._engine)
        return self._cache

    def _distances(self, rows: Sequence[str], cols: Sequence[str]) -> np.ndarray:
        t0 = time.perf_counter()
        D = self.cache.block(rows, cols)
        self.timings["distances"] += time.perf_counter() - t0
        return D

    def _targets(self) -> np.ndarray:
        """The transformed observations the GP is fitted to."""
        return get_transform(self.transform)(np.asarray(self.y))

    # ------------------------------------------------------------------ model
    def fit_model(self) -> DistanceGP:
        """The GP on the current observations (ML-II when the refit schedule says so)."""
        n = len(self.X)
        D = self._distances(self.X, self.X)
        t0 = time.perf_counter()
        refit = self.hyperparameters is None or n - self._fit_n >= self.refit_every
        seed = int(self.rng.integers(2**32)) if refit else 0
        gp = DistanceGP(kernel=self.kernel, psd=self.psd, n_restarts=self.n_restarts, seed=seed, **self.gp_options)
        y = self._targets()
        if refit:
            gp.fit(D, y, init=self.hyperparameters)
            self.hyperparameters = dict(gp.hyperparameters_)
            self._fit_n = n
        else:
            gp.fit(D, y, hyperparameters=self.hyperparameters)
        self.timings["fit"] += time.perf_counter() - t0
        return gp

    def posterior(self, gp: DistanceGP, archs: Sequence[str], train: Sequence[str], train_y: Sequence[float]
                  ) -> Posterior:
        """The GP posterior over ``archs`` (full covariance when the acquisition needs it)."""
        Dx = self._distances(archs, train)
        Daa = self._distances(archs, archs) if self.acquisition.needs_cov else None
        return gp_posterior(gp, Dx, Daa, best=float(np.max(train_y)))

    # ------------------------------------------------------------------ acquisition
    def _best_candidate(self, model: DistanceGP, cand: list[str], train: list[str], train_y: list[float]
                        ) -> tuple[int, float]:
        """The best of ``cand`` by the acquisition, and its posterior mean (for the kriging believer)."""
        t0, d0 = time.perf_counter(), self.timings["distances"]
        A = cand + train if (self.acquisition.needs_cov and self.kg_over == "pool+observed") else cand
        post = self.posterior(model, A, train, train_y)
        best = int(np.argmax(self.acquisition(post, np.arange(len(cand)))))
        self.timings["acquisition"] += time.perf_counter() - t0 - (self.timings["distances"] - d0)
        return best, float(post.mean[best])

    # ------------------------------------------------------------------ ask
    def ask(self, n: int = 1) -> list[str]:
        if len(self.X) < self.n_init:
            return sample_unseen(self.space, self.rng, self._seen, n)
        gp = self.fit_model()
        pool = self.pool(self.X, self.y, self.rng, exclude=self._seen)
        if not pool:
            return sample_unseen(self.space, self.rng, self._seen, n)

        def condition(train: list[str], train_y: list[float]) -> DistanceGP:
            # kriging believer: the believed means join the data; hyperparameters and scaling are kept
            return gp.with_data(self._distances(train, train), train_y)

        picks = kriging_believer(gp, pool, list(self.X), list(self._targets()), n, self._best_candidate, condition)
        if len(picks) < n:
            picks += sample_unseen(self.space, self.rng, self._seen.union(picks), n - len(picks))
        return picks

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(hyperparameters=None if self.hyperparameters is None else dict(self.hyperparameters),
                     fit_n=self._fit_n, pool=self.pool.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        h = state["hyperparameters"]
        self.hyperparameters = None if h is None else {k: float(v) for k, v in h.items()}
        self._fit_n = int(state["fit_n"])
        self.pool.load_state_dict(state["pool"])
