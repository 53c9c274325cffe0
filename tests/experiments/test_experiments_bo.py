"""The HOTNAS study and benchmark scripts run end to end in their quick modes (HOTNN distances)."""

from __future__ import annotations

import json


def test_bo_nb201_smoke(tmp_path, nb201_csv):
    from experiments.studies.bo_nb201 import main

    out = main(["--smoke", "--workers", "1", "--data", str(nb201_csv), "--out", str(tmp_path)])
    table = out["summary"]
    assert set(table) == {"hotnas", "evolution", "random"}
    for rows in table.values():
        assert set(rows) == {25, 30} or set(rows) == {25}
        assert all(r["regret_mean"] >= 0 and r["n"] == 2 for r in rows.values())
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["runs"]) == 6 and (tmp_path / "table.md").exists() and (tmp_path / "regret.png").exists()


def test_bench_bo_runs(nb201_csv):
    from experiments.bench.bench_bo import main

    out = main(["--n-obs", "25", "--pool", "20", "--repeats", "1", "--data", str(nb201_csv)])
    assert out["median_s"] > 0


def test_bo_vs_flow_smoke(tmp_path, nb201_csv):
    """Both parts of the BO-versus-flow study run end to end; every method spends exactly its budget
    (tabular) or its epochs (trainable), and the tables and plots are written."""
    from experiments.studies.bo_vs_flow import main

    out = main(["--smoke", "--workers", "1", "--data", str(nb201_csv), "--out", str(tmp_path)])
    tab, tr = out["tabular"], out["trainable"]
    assert tab and tr
    saved = json.loads((tmp_path / "tabular.json").read_text())
    runs = saved["runs"]
    assert {r["label"] for r in runs} == {"flow", "flow-accel", "flow-gp", "evolution", "random"}
    assert all(r["n_queries"] <= 30 and len(r["values"]) == r["n_queries"] for r in runs)
    for name in ("tabular.md", "regret.png", "mass.png", "trainable.md", "trainable.json"):
        assert (tmp_path / name).exists(), name
    trs = json.loads((tmp_path / "trainable.json").read_text())["runs"]
    assert all(r["epochs"] <= 6 + 1e-9 for r in trs)
