"""The distance benchmark runs in --smoke mode and its values never exceed POT's (both orientations)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_bench_distances_smoke():
    from experiments.bench.bench_distances import main

    res = main(["--smoke", "--n-jobs", "1", "--darts", "10", "--optima", "3"])
    assert res["n_higher"] == 0 and res["n_higher_reversed"] == 0
    assert res["plan_marginal_error"] < 1e-12
    assert res["optima_above"] == 0 and res["edges_higher_with_accurate_starts"] == 0
