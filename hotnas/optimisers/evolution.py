"""Regularised (aging) evolution, Real, Aggarwal, Huang, Le, AAAI 2019 [spec hotnn-and-bo.md, 7.3].

A population of the last ``population_size`` evaluated architectures (the first ones uniform at
random). Each proposal: draw ``tournament_size`` members without replacement, mutate the best
(mutation rate 1: one single-step mutation, redrawn until it is an architecture not evaluated
before). Each evaluation joins the population and, beyond its size, removes the oldest member
(``removal="oldest"``, Real et al.) or the worst (``"worst"``, as the TW-NAS code does).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..benchmarks.base import Evaluation
from ..spaces.base import SearchSpace
from .base import Optimiser, register_optimiser
from .random import sample_unseen

__all__ = ["RegularisedEvolution", "RandomSearchWarning"]


class RandomSearchWarning(UserWarning):
    """An evolution run whose budget is all initial population: it is random search."""


@register_optimiser("evolution")
class RegularisedEvolution(Optimiser):
    """Regularised evolution with tournament selection.

    Args:
        population_size: members kept (50); the first ``population_size`` queries are uniform samples.
        tournament_size: members drawn per tournament (10).
        removal: ``"oldest"`` (aging) or ``"worst"``.
        max_tries: mutation attempts per proposal before walking further / sampling at random.
        budget: the query budget, when known: a :class:`RandomSearchWarning` when it is not larger
            than ``population_size`` — the search would never mutate, i.e. be random search (the
            same check runs in :func:`~hotnas.optimisers.base.run_search`).
    """

    name = "evolution"

    def __init__(self, space: SearchSpace, seed: int | np.random.Generator | None = 0, population_size: int = 50,
                 tournament_size: int = 10, removal: str = "oldest", max_tries: int = 100,
                 budget: int | None = None):
        super().__init__(space, seed)
        for key, v in (("population_size", population_size), ("tournament_size", tournament_size),
                       ("max_tries", max_tries)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{key} must be a positive integer, got {v!r}")
        if removal not in ("oldest", "worst"):
            raise ValueError(f"removal must be 'oldest' or 'worst', got {removal!r}")
        if not 1 <= tournament_size <= population_size:
            raise ValueError(f"need 1 <= tournament_size <= population_size, got {tournament_size}, {population_size}")
        self.population_size = int(population_size)
        self.tournament_size = int(tournament_size)
        self.removal = removal
        self.max_tries = int(max_tries)
        self.population: list[tuple[str, float]] = []  # in order of evaluation (oldest first)
        if budget is not None:
            self.check_budget(budget)

    def check_budget(self, budget: int) -> None:
        """Warn (:class:`RandomSearchWarning`) when the budget leaves no query for evolution: all of it
        would be the uniform initial population, i.e. random search."""
        if budget <= self.population_size:
            warnings.warn(f"evolution: budget ({budget}) is not larger than population_size ({self.population_size}): "
                          f"the first population_size queries are uniform samples, so this run is random search; "
                          f"lower population_size (e.g. {max(2, budget // 4)}) or raise the budget",
                          RandomSearchWarning, stacklevel=3)

    def ask(self, n: int = 1) -> list[str]:
        if len(self.population) < self.population_size:
            return sample_unseen(self.space, self.rng, self._seen, n)
        out: list[str] = []
        for _ in range(n):
            taken = self._seen.union(out)
            idx = self.rng.choice(len(self.population), self.tournament_size, replace=False)
            parent = max((self.population[int(i)] for i in idx), key=lambda m: m[1])[0]
            child = self._mutate_unseen(parent, taken)
            if child is None:
                child = next(iter(sample_unseen(self.space, self.rng, taken, 1)), None)
            if child is None:
                break
            out.append(child)
        return out

    def _mutate_unseen(self, parent: str, taken: set[str]) -> str | None:
        """A mutation of ``parent`` not in ``taken``; if all neighbours are taken, walk on."""
        cur = parent
        for _ in range(self.max_tries):
            child = self.space.mutate(cur, self.rng)
            if child not in taken:
                return child
            if all(c in taken for c in self.space.mutations(cur)):
                cur = child
        return None

    def tell(self, evals: list[Evaluation]) -> None:
        super().tell(evals)
        for ev in evals:
            self.population.append((ev.arch, float(ev.value)))
            if len(self.population) > self.population_size:
                if self.removal == "oldest":
                    self.population.pop(0)
                else:
                    self.population.pop(int(np.argmin([v for _, v in self.population])))

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["population"] = [[a, v] for a, v in self.population]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.population = [(a, float(v)) for a, v in state["population"]]
