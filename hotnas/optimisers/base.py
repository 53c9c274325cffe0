"""The ask/tell interface shared by every optimiser, and the search driver with its one result type.

    opt = get_optimiser("hotnas", space, seed=0)
    result = run_search(opt, benchmark, budget=200)

``ask(n)`` proposes architectures (canonical strings) not yet evaluated by this optimiser;
``tell(evals)`` feeds their evaluations back; ``recommend()`` is the optimiser's current answer
(by default the best validation value seen). ``state_dict()``/``load_state_dict()`` capture the
whole state, RNG included, so a checkpointed run resumes exactly.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..benchmarks.base import Benchmark, Evaluation
from ..spaces.base import SearchSpace

__all__ = ["Optimiser", "SearchResult", "run_search", "OPTIMISERS", "register_optimiser", "get_optimiser",
           "rng_state", "set_rng_state"]


def rng_state(rng: np.random.Generator) -> dict:
    """JSON-able state of a numpy Generator."""
    return rng.bit_generator.state


def set_rng_state(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = state


class Optimiser(ABC):
    """Base class: keeps the observations; subclasses implement ``ask``.

    Parameters
    ----------
    space : SearchSpace
    seed : int or numpy Generator
    """

    name: str = "optimiser"

    def __init__(self, space: SearchSpace, seed: int | np.random.Generator | None = 0):
        self.space = space
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.X: list[str] = []      # evaluated architectures, in order
        self.y: list[float] = []    # their validation values (higher is better)
        self._seen: set[str] = set()

    @abstractmethod
    def ask(self, n: int = 1) -> list[str]:
        """Propose ``n`` distinct architectures not evaluated before."""

    def tell(self, evals: list[Evaluation]) -> None:
        """Record evaluations (any order, any subset of what was asked)."""
        for ev in evals:
            if not np.isfinite(ev.value):
                raise ValueError(f"evaluation of {ev.arch!r} is not finite: {ev.value!r}")
            self.X.append(ev.arch)
            self.y.append(float(ev.value))
            self._seen.add(ev.arch)

    def check_budget(self, budget: int) -> None:
        """Refuse a budget this optimiser cannot work with (e.g. smaller than its initial design).

        The default accepts any positive budget; subclasses raise ValueError naming both numbers.
        """

    def recommend(self) -> str | None:
        """Current recommendation: the best validation value seen (subclasses may override)."""
        if not self.y:
            return None
        return self.X[int(np.argmax(self.y))]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (JSON-able)."""
        return {"X": list(self.X), "y": list(self.y), "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.X = list(state["X"])
        self.y = [float(v) for v in state["y"]]
        self._seen = set(self.X)
        set_rng_state(self.rng, state["rng"])


@dataclass
class SearchResult:
    """One run of one optimiser on one benchmark.

    Lists are per query, in order: the architecture, its validation and test values, its cost,
    the best validation value so far, the test value of the best-so-far architecture, and the
    optimiser's recommendation after that query.
    """

    method: str
    seed: int | None
    archs: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    tests: list[float | None] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    best_so_far: list[float] = field(default_factory=list)
    test_of_best: list[float | None] = field(default_factory=list)
    recommendations: list[str | None] = field(default_factory=list)
    wall_clock: list[float] = field(default_factory=list)
    optimum: float | None = None

    def add(self, ev: Evaluation, recommendation: str | None, wall: float) -> None:
        self.archs.append(ev.arch)
        self.values.append(ev.value)
        self.tests.append(ev.test)
        self.costs.append(ev.cost)
        if not self.best_so_far or ev.value > self.best_so_far[-1]:
            self.best_so_far.append(ev.value)
            self.test_of_best.append(ev.test)
        else:
            self.best_so_far.append(self.best_so_far[-1])
            self.test_of_best.append(self.test_of_best[-1])
        self.recommendations.append(recommendation)
        self.wall_clock.append(wall)

    def regret(self) -> np.ndarray:
        """Validation regret per query: optimum - best so far (needs a known optimum)."""
        if self.optimum is None:
            raise ValueError("this benchmark has no known optimum, so regret is undefined")
        return self.optimum - np.asarray(self.best_so_far)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_search(optimiser: Optimiser, benchmark: Benchmark, budget: int, batch_size: int = 1,
               seed: int | None = None,
               callback: Callable[[SearchResult, Evaluation], None] | None = None) -> SearchResult:
    """Drive ``optimiser`` on ``benchmark`` for ``budget`` queries (asks of ``batch_size``)."""
    if not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget must be a positive integer, got {budget!r}")
    optimiser.check_budget(int(budget))
    res = SearchResult(method=optimiser.name, seed=seed, optimum=benchmark.optimum)
    t0 = time.perf_counter()
    while len(res.values) < budget:
        archs = optimiser.ask(min(batch_size, budget - len(res.values)))
        if not archs:
            break
        evals = [benchmark.query(a) for a in archs]
        optimiser.tell(evals)
        for ev in evals:
            res.add(ev, optimiser.recommend(), time.perf_counter() - t0)
            if callback is not None:
                callback(res, ev)
    return res


OPTIMISERS: dict[str, Callable[..., Optimiser]] = {}


def register_optimiser(name: str):
    """Class decorator adding an optimiser factory to the registry under ``name``."""

    def deco(cls):
        if name in OPTIMISERS:
            raise ValueError(f"an optimiser named {name!r} is already registered")
        OPTIMISERS[name] = cls
        return cls

    return deco


def get_optimiser(name: str, space: SearchSpace, seed: int | None = 0, **kwargs: Any) -> Optimiser:
    """Build a registered optimiser by name; unknown names raise a ValueError listing the choices."""
    if name not in OPTIMISERS:
        raise ValueError(f"unknown optimiser {name!r}; expected one of {sorted(OPTIMISERS)}")
    return OPTIMISERS[name](space, seed=seed, **kwargs)
