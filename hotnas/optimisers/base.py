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

from sdot.registry import Registry

from ..benchmarks.base import Benchmark, Evaluation
from ..spaces.base import SearchSpace

__all__ = ["Optimiser", "SearchResult", "run_search", "OPTIMISERS", "register_optimiser", "get_optimiser",
           "rng_state", "set_rng_state", "write_csv"]


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
        """Record evaluations (any order, any subset of what was asked).

        Raises TypeError for anything but a list of evaluations (objects with ``arch`` and ``value``),
        ValueError for an architecture the space rejects or a non-finite value."""
        for ev in self.check_evaluations(evals):
            if not np.isfinite(ev.value):
                raise ValueError(f"evaluation of {ev.arch!r} is not finite: {ev.value!r}")
            self.X.append(ev.arch)
            self.y.append(float(ev.value))
            self._seen.add(ev.arch)

    def check_evaluations(self, evals: Any) -> list[Evaluation]:
        """``evals`` as a list after checking it: a list (or other iterable, not a string) of
        :class:`Evaluation`-like objects with a string ``arch`` valid in the space and a real ``value``."""
        import numbers

        if isinstance(evals, (str, bytes, Evaluation)) or not hasattr(evals, "__iter__"):
            raise TypeError(f"{type(self).__name__}.tell() takes a list of Evaluation objects, got "
                            f"{type(evals).__name__} {evals!r:.60}")
        out = list(evals)
        for ev in out:
            arch, value = getattr(ev, "arch", None), getattr(ev, "value", None)
            if not isinstance(arch, str) or isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{type(self).__name__}.tell() takes Evaluation objects (a string arch and a real "
                                f"value), got {type(ev).__name__} {ev!r:.80}")
            try:
                self.space.canonical(arch)
            except ValueError as exc:
                raise ValueError(f"{type(self).__name__}.tell(): {arch!r} is not an architecture of search space "
                                 f"{getattr(self.space, 'name', type(self.space).__name__)!r}: {exc}") from None
        return out

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

    #: Columns of :meth:`rows`, :meth:`to_csv` and :meth:`to_frame`, in order.
    COLUMNS = ("method", "seed", "query", "arch", "value", "test", "cost", "cumulative_cost", "best_so_far",
               "test_of_best", "regret", "recommendation", "wall_clock")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SearchResult":
        """A result from :meth:`to_dict` output (extra keys, e.g. a run directory's, are ignored)."""
        names = [f for f in cls.__dataclass_fields__]
        return cls(**{k: (list(d[k]) if isinstance(d[k], list) else d[k]) for k in names if k in d})

    def rows(self) -> list[dict[str, Any]]:
        """One tidy row per query (like Optuna's ``trials_dataframe``): ``query`` counts from 1,
        ``cumulative_cost`` sums ``cost``, ``regret`` is ``optimum - best_so_far`` (None without a
        known optimum), ``recommendation`` the optimiser's answer after that query."""
        out = []
        total = 0.0
        for i, arch in enumerate(self.archs):
            total += float(self.costs[i])
            out.append({"method": self.method, "seed": self.seed, "query": i + 1, "arch": arch,
                        "value": self.values[i], "test": self.tests[i], "cost": self.costs[i],
                        "cumulative_cost": total, "best_so_far": self.best_so_far[i],
                        "test_of_best": self.test_of_best[i],
                        "regret": None if self.optimum is None else self.optimum - self.best_so_far[i],
                        "recommendation": self.recommendations[i], "wall_clock": self.wall_clock[i]})
        return out

    def to_csv(self, path: Any) -> Any:
        """Write :meth:`rows` as a CSV with a header (:attr:`COLUMNS`; None is an empty cell); returns ``path``.
        ``path`` may also be an open text file."""
        write_csv(self.rows(), path, self.COLUMNS)
        return path

    def to_frame(self) -> Any:
        """:meth:`rows` as a ``pandas.DataFrame`` (pandas is optional: ImportError saying how to install it)."""
        pd = _pandas("SearchResult.to_frame()")
        return pd.DataFrame(self.rows(), columns=list(self.COLUMNS))


def _pandas(what: str) -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError(f"{what} needs pandas, which is not installed: pip install pandas "
                          f"(or pip install 'sdot-nas[pandas]'); to_csv() needs nothing more") from None
    return pandas


def write_csv(rows: list[dict[str, Any]], path: Any, columns: Any) -> None:
    """Write dict rows as a CSV with the header ``columns`` (None -> empty cell, floats in full precision)."""
    import csv
    import os

    def cell(v: Any) -> Any:
        if v is None:
            return ""
        if isinstance(v, (float, np.floating)):
            return repr(float(v))
        if isinstance(v, np.integer):
            return int(v)
        return v

    own = isinstance(path, (str, os.PathLike))
    fh = open(path, "w", newline="", encoding="utf-8") if own else path
    try:
        w = csv.writer(fh)
        w.writerow(list(columns))
        for r in rows:
            w.writerow([cell(r.get(c)) for c in columns])
    finally:
        if own:
            fh.close()


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


#: name -> optimiser class (one :class:`sdot.registry.Registry`: duplicates refused, did-you-mean errors).
OPTIMISERS: Registry = Registry("optimiser", hint="add one with @hotnas.optimisers.register_optimiser(name)")


def register_optimiser(name: str, **meta: Any):
    """Class decorator adding an optimiser factory to the registry under ``name`` (same class again: no-op).

    ``meta`` declares what the conformance tests need to know: ``spaces=("nb201",)`` for an optimiser
    tied to some spaces (default: any space), ``heavy=True`` for one that trains networks (its
    conformance test then runs only with ``pytest -m slow``)."""

    def deco(cls):
        OPTIMISERS.register(name, cls, **meta)
        return cls

    return deco


def get_optimiser(name: str, space: SearchSpace, seed: int | None = 0, **kwargs: Any) -> Optimiser:
    """Build a registered optimiser by name; unknown names raise a ValueError naming the closest choice."""
    return OPTIMISERS.load(name)(space, seed=seed, **kwargs)
