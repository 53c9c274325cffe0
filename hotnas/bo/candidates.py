"""Candidate pools for acquisition optimisation: mutations of the best architectures plus random ones.

[spec hotnn-and-bo.md, Section 6.3] TW-NAS mutates the top 10 observed architectures (30 mutations
each, first 100 unique kept); NAS-BOWL uses 100-200 candidates, half from mutations. Here:

1. the ``top_k`` observed architectures by value, best first;
2. their single-step mutations (all of them, or ``mutations_per_parent`` drawn at random), in parent
   order, deduplicated, excluding evaluated (and otherwise excluded) architectures;
3. if more than ``size - n_random`` remain, a random subset of that many (kept in parent order);
4. uniform samples, not evaluated and not already in the pool, up to ``size`` (at least ``n_random``
   of them). The random part is
   kept from call to call (members leave only when evaluated) and redrawn every
   ``random_refresh`` calls, so a distance cache is not flooded with new architectures.

The pool is an object with a :meth:`state_dict`, so a resumed search draws the same pools. Any object
with the same call (a :class:`CandidateGenerator`) can replace it in :class:`~hotnas.optimisers.bo.HotnasBO`
(``candidates=``); the surrogate-guided flow of :mod:`hotnas.optimisers.flow_bo` is one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sdot.validation import nonnegative_int, positive_int

from ..spaces.base import SearchSpace

__all__ = ["CandidatePool", "CandidateGenerator"]


@runtime_checkable
class CandidateGenerator(Protocol):
    """What the BO loop needs of a candidate generator: distinct unevaluated architectures to score, and a
    state to checkpoint (``{}`` when it keeps none)."""

    def __call__(self, archs: Sequence[str], values: Sequence[float], rng: np.random.Generator,
                 exclude: Collection[str] = ()) -> list[str]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class CandidatePool:
    """Mutation-plus-random candidate pools.

    Args:
        space: the search space (its ``mutations`` and ``sample``).
        size: largest pool size.
        top_k: number of best observed architectures that are mutated.
        mutations_per_parent: mutations drawn per parent (None: all single-step mutations).
        n_random: fewest uniform random members (more when the mutations do not fill the pool).
        random_refresh: calls between redraws of the random members (1: every call).
        max_tries: random draws allowed per random member before giving up (nearly exhausted spaces).
    """

    def __init__(self, space: SearchSpace, size: int = 100, top_k: int = 10,
                 mutations_per_parent: int | None = None, n_random: int = 10, random_refresh: int = 10,
                 max_tries: int = 50):
        self.space = space
        self.size = positive_int("size", size)
        self.top_k = nonnegative_int("top_k", top_k)
        self.n_random = nonnegative_int("n_random", n_random)
        self.random_refresh = positive_int("random_refresh", random_refresh)
        self.max_tries = positive_int("max_tries", max_tries)
        if self.n_random > self.size:
            raise ValueError(f"n_random={n_random} exceeds the pool size {size}")
        self.mutations_per_parent = (None if mutations_per_parent is None
                                     else positive_int("mutations_per_parent", mutations_per_parent))
        self._random: list[str] = []
        self._calls = 0

    def __call__(self, archs: Sequence[str], values: Sequence[float], rng: np.random.Generator,
                 exclude: Collection[str] = ()) -> list[str]:
        """A pool of distinct canonical architectures, none in ``archs`` or ``exclude``.

        Args:
            archs, values: the observations (higher values are better).
            rng: the random stream (mutation subsets, random members).
            exclude: further architectures to leave out (e.g. pending evaluations).
        """
        seen = set(archs) | set(exclude)
        order = np.argsort(-np.asarray(values, dtype=float), kind="stable")[: self.top_k]
        pool: dict[str, None] = {}
        for i in order:
            nbrs = self.space.mutations(archs[int(i)])
            if self.mutations_per_parent is not None and len(nbrs) > self.mutations_per_parent:
                pick = np.sort(rng.choice(len(nbrs), self.mutations_per_parent, replace=False))
                nbrs = [nbrs[int(j)] for j in pick]
            for a in nbrs:
                if a not in seen:
                    pool.setdefault(a, None)
        room = self.size - self.n_random
        mutants = list(pool)
        if len(mutants) > room:
            keep = np.sort(rng.choice(len(mutants), room, replace=False))
            mutants = [mutants[int(j)] for j in keep]
        if self._calls % self.random_refresh == 0:
            self._random = []
        self._calls += 1
        chosen = set(mutants)
        n_random = self.size - len(mutants)  # >= self.n_random: random samples top the pool up
        self._random = [a for a in self._random if a not in seen and a not in chosen][:n_random]
        tries = 0
        while len(self._random) < n_random and tries < self.max_tries * n_random:
            tries += 1
            a = self.space.sample(rng)
            if a not in seen and a not in chosen and a not in self._random:
                self._random.append(a)
        return mutants + self._random

    def state_dict(self) -> dict[str, Any]:
        return {"random": list(self._random), "calls": self._calls}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._random = list(state["random"])
        self._calls = int(state["calls"])
