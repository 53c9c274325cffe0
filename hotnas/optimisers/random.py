"""Random search: uniform samples from the space, never repeating an evaluated architecture."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from ..spaces.base import SearchSpace
from .base import Optimiser, register_optimiser

__all__ = ["RandomSearch", "sample_unseen"]


def sample_unseen(space: SearchSpace, rng: np.random.Generator, exclude: Collection[str], n: int,
                  max_tries: int = 1000) -> list[str]:
    """``n`` distinct uniform samples not in ``exclude`` (rejection sampling).

    When rejection keeps failing (a nearly exhausted space), falls back to a uniform choice among
    the remaining architectures of an enumerable space; returns fewer than ``n`` only when the
    space has fewer left.
    """
    out: list[str] = []
    taken = set(exclude)
    misses = 0
    while len(out) < n:
        a = space.sample(rng)
        if a in taken:
            misses += 1
            if misses > max_tries:
                break
            continue
        taken.add(a)
        out.append(a)
    if len(out) < n:
        rest = [a for a in space.enumerate() if a not in taken]
        k = min(n - len(out), len(rest))
        out += [rest[int(i)] for i in rng.choice(len(rest), k, replace=False)]
    return out


@register_optimiser("random")
class RandomSearch(Optimiser):
    """Uniform random search without replacement (spec 7.3). ``budget`` is accepted (and checked) so that
    every optimiser takes ``get_optimiser(name, space, seed=0, budget=200)``."""

    name = "random"

    def __init__(self, space: SearchSpace, seed: int | np.random.Generator | None = 0, budget: int | None = None):
        super().__init__(space, seed)
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1):
            raise ValueError(f"budget must be a positive integer, got {budget!r}")

    def ask(self, n: int = 1) -> list[str]:
        return sample_unseen(self.space, self.rng, self._seen, n)
