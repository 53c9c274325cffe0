"""Benchmarks: objectives over architectures that count their queries and their cost.

A query returns the *validation* metric (what a search may look at); the test metric is for
reporting only. Metrics are "higher is better" (accuracy, in %); a benchmark that knows its
optimum exposes it so regret is exact.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from ..spaces.base import SearchSpace

__all__ = ["Evaluation", "Benchmark"]


@dataclass(frozen=True)
class Evaluation:
    """Result of one query. ``value``: validation metric; ``test``: test metric (report only);
    ``cost``: what the query cost (seconds of training, epochs, or 1 for a table look-up)."""

    arch: str
    value: float
    test: float | None = None
    cost: float = 1.0


class Benchmark(ABC):
    """An objective over a search space. Subclasses implement ``_evaluate``.

    Its counters ``n_queries`` and ``total_cost`` (sum of ``Evaluation.cost``) count what :meth:`query`
    did; change them only through :meth:`reset_counters`, :meth:`count` (queries run elsewhere: on a
    worker, or replayed from a log) and :meth:`load_counters`.
    """

    name: str = "benchmark"
    space: SearchSpace

    def __init__(self) -> None:
        self.n_queries = 0
        self.total_cost = 0.0

    def query(self, arch: str) -> Evaluation:
        """Evaluate one architecture (validated and canonicalised first); counts the query."""
        arch = self.space.canonical(arch)
        ev = self._evaluate(arch)
        self.n_queries += 1
        self.total_cost += ev.cost
        return ev

    def reset_counters(self) -> None:
        """Zero ``n_queries`` and ``total_cost`` (a benchmark reused for a new search)."""
        self.n_queries, self.total_cost = 0, 0.0

    def count(self, evals: list[Evaluation]) -> None:
        """Count evaluations this object did not run itself (on a worker's copy, or told from a log)."""
        evals = list(evals)
        self.n_queries += len(evals)
        self.total_cost += sum(ev.cost for ev in evals)

    def counters(self) -> dict[str, float]:
        """``{"n_queries": ..., "total_cost": ...}`` (JSON-able; :meth:`load_counters` restores it)."""
        return {"n_queries": self.n_queries, "total_cost": self.total_cost}

    def load_counters(self, counters: dict[str, float]) -> None:
        self.n_queries, self.total_cost = int(counters["n_queries"]), float(counters["total_cost"])

    @abstractmethod
    def _evaluate(self, arch: str) -> Evaluation: ...

    @property
    def optimum(self) -> float | None:
        """Best attainable validation value, when known (tabular benchmarks)."""
        return None

    def test_of_best(self) -> float | None:  # pragma: no cover - optional
        """Test metric of the architecture with the best validation value, when known."""
        return None
