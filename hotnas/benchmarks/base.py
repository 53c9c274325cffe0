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
    """An objective over a search space. Subclasses implement ``_evaluate``."""

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

    @abstractmethod
    def _evaluate(self, arch: str) -> Evaluation: ...

    @property
    def optimum(self) -> float | None:
        """Best attainable validation value, when known (tabular benchmarks)."""
        return None

    def test_of_best(self) -> float | None:  # pragma: no cover - optional
        """Test metric of the architecture with the best validation value, when known."""
        return None
