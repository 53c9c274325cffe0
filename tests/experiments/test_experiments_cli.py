"""The sdot-nas command line: run, report, plot, compare, list, validate, and its error messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import toy_components  # noqa: F401
from experiments.cli import main
from experiments.config import dump_toml

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]

TOY = {
    "name": "toy",
    "plugins": ["toy_components"],
    "benchmark": {"name": "toy-bits", "options": {"n_bits": 6}},
    "search": {"budget": 6, "seeds": [0, 1]},
    "methods": [{"optimiser": "toy-evolve"}, {"optimiser": "toy-random"}],
}


def test_run_report_plot_and_resume(tmp_path, capsys):
    cfg = tmp_path / "toy.toml"
    cfg.write_text(dump_toml(TOY))
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "toy-evolve" in printed and "done in" in printed and "report.md" in printed
    report = (out / "report.md").read_text()
    assert "| `toy-evolve` | 2 |" in report and "![" in report
    for png in ("best_so_far", "regret", "test_of_best", "mass", "graph_mass"):
        assert (out / "figures" / f"{png}.png").stat().st_size > 1000, png
    summary = json.loads((out / "summary.json").read_text())
    assert summary["wall_time_s"] > 0 and set(summary["methods"]) == {"toy-evolve", "toy-random"}
    assert (out / "config.toml").exists() and (out / "run.json").exists()

    assert main(["report", str(out), "--no-plots"]) == 0
    assert main(["plot", str(out)]) == 0
    # a finished run resumes to the same results, by its directory alone
    assert main(["run", str(out), "--resume", "--no-progress", "--no-report"]) == 0
    assert json.loads((out / "summary.json").read_text())["methods"] == summary["methods"]
    # overriding seeds on resume makes it another config
    assert main(["run", str(out), "--resume", "--seed", "0-3", "--no-progress"]) == 2
    assert "belongs to another config" in capsys.readouterr().err


def test_errors_are_one_clear_line(tmp_path, capsys):
    bad = dict(TOY, search={"budget": 0, "seeds": [0]})
    cfg = tmp_path / "bad.toml"
    cfg.write_text(dump_toml(bad))
    assert main(["run", str(cfg), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sdot-nas: error: bad.toml: search.budget: must be >= 1") and "Traceback" not in err
    assert main(["report", str(tmp_path)]) == 2
    assert "not a sdot-nas run directory" in capsys.readouterr().err
    assert main(["run", str(cfg), "--seed", "x"]) == 2
    assert "--seed" in capsys.readouterr().err


def test_compare_list_validate(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(["compare", "--benchmark", "toy-bits", "--benchmark-option", "n_bits=5", "--methods",
                 "toy-random,toy-evolve", "--method-option", "toy-evolve.population=2", "--seed", "0-1",
                 "--budget", "4", "--out", str(out), "--no-progress", "--no-report"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (out / "trials").iterdir()) == [
        "toy-evolve__seed0", "toy-evolve__seed1", "toy-random__seed0", "toy-random__seed1"]
    assert "population = 2" in (out / "config.toml").read_text()
    capsys.readouterr()
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "toy-evolve" in listing and "glauber" in listing
    cfg = tmp_path / "toy.toml"
    cfg.write_text(dump_toml(TOY))
    assert main(["validate", str(cfg)]) == 0
    assert "valid; fingerprint" in capsys.readouterr().out


def test_console_entry_point_runs_as_a_module(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "experiments.cli", "--help"], env=env, capture_output=True,
                          timeout=60)
    assert done.returncode == 0 and b"run" in done.stdout and b"compare" in done.stdout


def test_density_snapshots_figure(tmp_path):
    import numpy as np

    from experiments.plots import plot_density_snapshots

    x = np.linspace(-2, 2, 41)
    rhos = [np.stack([np.exp(-(x - m) ** 2 / (2 * s)) for m in (-1, 0, 1)]) for s in (0.1, 0.5, 1.0)]
    path = plot_density_snapshots(x, rhos, [0.0, 0.5, 1.0], tmp_path / "density.png", node_labels=["a", "b", "c"])
    assert path.stat().st_size > 1000


def test_export_writes_every_trial_tidy(tmp_path, capsys):
    import csv

    cfg = tmp_path / "toy.toml"
    cfg.write_text(dump_toml(TOY))
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress", "--no-report"]) == 0
    csv_path = tmp_path / "all.csv"
    assert main(["export", str(out), "--csv", str(csv_path)]) == 0
    assert "wrote 24 evaluation(s) of 4 trial(s)" in capsys.readouterr().out
    rows = list(csv.DictReader(open(csv_path)))
    from experiments.report import EXPORT_COLUMNS

    assert list(rows[0]) == list(EXPORT_COLUMNS) and len(rows) == 24
    assert {(r["method"], r["seed"]) for r in rows} == {(m, s) for m in ("toy-evolve", "toy-random") for s in "01"}
    for tid in ("toy-evolve__seed0", "toy-random__seed1"):
        res = json.loads((out / "trials" / tid / "result.json").read_text())
        mine = [r for r in rows if r["trial"] == tid]
        assert [r["arch"] for r in mine] == res["archs"] and [int(r["query"]) for r in mine] == list(range(1, 7))
        assert [float(r["best_so_far"]) for r in mine] == res["best_so_far"]
        assert [float(r["regret"]) for r in mine] == [res["optimum"] - b for b in res["best_so_far"]]
        assert {r["partial"] for r in mine} == {"False"} and {r["optimiser"] for r in mine} == {tid.split("__")[0]}
    pd = __import__("pytest").importorskip("pandas")
    from experiments.report import trials_frame

    df = trials_frame(out)
    assert isinstance(df, pd.DataFrame) and len(df) == 24
    assert df.groupby("trial")["best_so_far"].max().to_dict() == {
        tid: json.loads((out / "trials" / tid / "result.json").read_text())["best_so_far"][-1]
        for tid in df["trial"].unique()}


def test_budget_flag_adjusts_report_milestones(tmp_path, capsys):
    raw = dict(TOY, search={"budget": 8, "seeds": [0]}, report={"milestones": [2, 4, 8]})
    cfg = tmp_path / "toy.toml"
    cfg.write_text(dump_toml(raw))
    out = tmp_path / "run"
    # used to fail: "report.milestones: [4, 8] exceed search.budget (3)"
    assert main(["run", str(cfg), "--out", str(out), "--budget", "3", "--no-progress", "--no-report"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["milestones"] == [2, 3] and summary["budget"] == 3
    assert main(["run", str(cfg), "--out", str(tmp_path / "r2"), "--budget", "12", "--no-progress",
                 "--no-report"]) == 0
    assert json.loads((tmp_path / "r2" / "summary.json").read_text())["milestones"] == [2, 4, 8, 12]
