"""The shared-ranking study (issue 12: the supernet's weight-shared ranking vs the table) runs end to end."""

from __future__ import annotations

import json

import numpy as np


def test_shared_ranking_smoke(tmp_path):
    from experiments.studies.shared_ranking import FINALISTS, main

    res = main(["--smoke", "--out", str(tmp_path)])
    (row,) = res["rows"]
    assert row["queries"] == 1 and 0 < row["epochs"] <= 4.0          # one query's compute, no more
    assert -1 <= row["rho"] <= 1 and 0 <= row["top10"] <= 6
    assert row["regret_argmax"] >= 0 and row["cells_seen"] >= 1
    assert all(row[f"pick_R{R}"] >= row[f"oracle_R{R}"] >= 0 for R in FINALISTS)
    assert 0 < res["from_scratch"]["rho_vs_rest"] < res["from_scratch"]["rho_vs_mean"] <= 1
    assert json.loads((tmp_path / "results.json").read_text())["rows"][0]["rho"] == row["rho"] or np.isnan(row["rho"])
    assert (tmp_path / "table.md").read_text().startswith("Weight-shared ranking of the 6 cells")


def test_inherited_scores_match_the_flow(tmp_path):
    """Scoring (particle, cell) pairs in chunks gives each particle's own validation accuracy at its own cell."""
    from experiments.rundir.trial import build_benchmark, build_optimiser
    from experiments.studies.shared_ranking import FLOW, OPS, inherited_scores

    bench = build_benchmark("digits-nb201", {"query": "seed", "ops": OPS}, seed=3)
    opt = build_optimiser("supernet-flow", bench.space, 3, dict(FLOW, n_particles=2, birth_death=0.0), budget=25)
    opt.tell([bench.query(a) for a in opt.ask(1)])
    own = opt.flow.evaluate()
    acc = inherited_scores(opt.flow, list(opt.flow.archs), chunk=3)
    assert acc.shape == (2, 2)
    np.testing.assert_allclose(np.diag(acc), own, atol=1e-6)
