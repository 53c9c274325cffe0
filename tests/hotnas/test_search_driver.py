"""The shared search driver: budgets are validated before any query is spent."""

import numpy as np
import pytest

from hotnas.benchmarks.base import Benchmark, Evaluation
from hotnas.optimisers import get_optimiser, run_search
from hotnas.spaces.nb201 import NB201Space


class _CountingNB201(Benchmark):
    """val = number of conv3x3 edges, so the optimum (6) is known without any table."""

    name = "count"

    def __init__(self):
        super().__init__()
        self.space = NB201Space()

    def _evaluate(self, arch):
        return Evaluation(arch, float(arch.count("nor_conv_3x3")), None, 1.0)

    @property
    def optimum(self):
        return 6.0


@pytest.mark.parametrize("budget", [0, -3, 2.5, "10"])
def test_bad_budget_is_refused(budget):
    bench = _CountingNB201()
    with pytest.raises(ValueError, match="budget"):
        run_search(get_optimiser("random", bench.space, seed=0), bench, budget=budget)
    assert bench.n_queries == 0


def test_budget_below_initial_design_is_refused_before_querying():
    bench = _CountingNB201()
    opt = get_optimiser("hotnas", bench.space, seed=0, n_init=10, distance="hamming")
    with pytest.raises(ValueError, match="initial design"):
        run_search(opt, bench, budget=5)
    assert bench.n_queries == 0


def test_run_search_spends_exactly_the_budget_and_tracks_best():
    bench = _CountingNB201()
    res = run_search(get_optimiser("evolution", bench.space, seed=1), bench, budget=60)
    assert bench.n_queries == 60 == len(res.values) == len(set(res.archs))
    assert np.all(np.diff(res.best_so_far) >= 0)
    assert res.best_so_far[-1] == max(res.values)
    assert np.allclose(res.regret(), 6.0 - np.asarray(res.best_so_far))
