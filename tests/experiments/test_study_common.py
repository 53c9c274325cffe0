"""The shared plumbing of the study scripts (experiments/studies/common.py) and the study configs."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import numpy as np
import pytest

from experiments.studies import common
from experiments.studies.common import (curve_matrix, describe, load_config, optimiser_defaults, parse_study_args,
                                        study_parser, summarise)

ROOT = Path(__file__).resolve().parents[2]


def test_describe_std_and_standard_error():
    v = [1.0, 2.0, None, 4.0]
    m, s, n = describe(v)
    assert (m, n) == (7 / 3, 3) and s == pytest.approx(np.std([1, 2, 4]))
    m, se, n = describe(v, "se")
    assert se == pytest.approx(np.std([1, 2, 4], ddof=1) / math.sqrt(3))
    assert math.isnan(describe([5.0], "se")[1]) and describe([], "se")[2] == 0
    with pytest.raises(ValueError, match="spread"):
        describe([1.0], "sd")


def test_curve_matrix_pads_or_cuts():
    curves = [[3.0, 2.0, 1.0], [2.0, 0.0]]
    assert curve_matrix(curves).tolist() == [[3, 2, 1], [2, 0, 0]]
    assert np.isnan(curve_matrix(curves, pad="nan")[1, 2])
    assert curve_matrix(curves, pad="cut").shape == (2, 2)
    with pytest.raises(ValueError, match="pad"):
        curve_matrix(curves, pad="zero")


def test_summarise_checkpoints_found_and_paired_differences():
    a = np.array([[2.0, 1.0, 0.0], [2.0, 2.0, 1.0], [3.0, 1.0, 0.0]])
    b = np.array([[2.0, 2.0, 1.0], [3.0, 2.0, 2.0], [3.0, 3.0, 0.0]])
    s = summarise({"a": a, "b": b}, [2, 3, 9], reference="b")
    assert s["a"]["n"] == 3 and s["a"]["found"] == pytest.approx(2 / 3) and set(s["a"]["at"]) == {2, 3}
    d = a[:, 1] - b[:, 1]
    assert s["a"]["paired"][2] == pytest.approx((d.mean(), d.std(ddof=1) / math.sqrt(3)))
    assert s["b"]["paired"][3] == (0.0, 0.0)
    other = summarise({"a": a, "b": b}, [2], reference="b", difference="reference-label")
    assert other["a"]["paired"][2][0] == pytest.approx(-d.mean())
    # pairing by seed: only the seeds both ran
    s = summarise({"a": a, "b": b[:2]}, [3], reference="b", seeds={"a": [0, 1, 2], "b": [2, 0]}, min_pairs=2)
    assert s["a"]["n_pairs"] == 2
    assert s["a"]["paired"][3][0] == pytest.approx(np.mean([a[2, 2] - b[0, 2], a[0, 2] - b[1, 2]]))
    assert "paired" not in summarise({"a": a, "b": b}, [3], reference="b", seeds={"a": [0, 1, 2], "b": [5, 6, 7]},
                                     min_pairs=2)["a"]


def test_optimiser_defaults_come_from_the_optimiser():
    from hotnas.optimisers import OPTIMISERS

    sig = inspect.signature(OPTIMISERS["flow"].__init__).parameters
    got = optimiser_defaults("flow", "n_particles", "temperature", "law")
    assert list(got) == ["n_particles", "temperature", "law"]
    assert all(got[k] == sig[k].default for k in got)
    with pytest.raises(KeyError, match="no default for \\['seed'\\]"):
        optimiser_defaults("flow", "seed")
    hot = optimiser_defaults("hotnas", "n_init", "pool_size")
    params = inspect.signature(OPTIMISERS["hotnas"].__init__).parameters
    assert hot == {k: params[k].default for k in hot}
    from hotnas.flows import defaults

    assert optimiser_defaults("independent", "jump_dt") == {"jump_dt": defaults("independent")["jump_dt"]}


def test_study_parser_flags_and_config(tmp_path):
    ap = study_parser("A study.\n\nMore.", "quick", config=None, workers=2, seeds=10, budget=200, out="results/x",
                      aggregate=False)
    ap.add_argument("--methods", nargs="+", default=["a"], choices=["a", "b"])
    args = parse_study_args(ap, [])
    assert (args.workers, args.seeds, args.budget, args.out, args.aggregate, args.smoke) == \
        (2, 10, 200, "results/x", False, False)
    cfg = tmp_path / "s.toml"
    cfg.write_text('seeds = 3\nmethods = ["b"]\n')
    args = parse_study_args(ap, ["--config", str(cfg), "--budget", "7"])
    assert (args.seeds, args.methods, args.budget) == (3, ["b"], 7)
    args = parse_study_args(ap, ["--config", str(cfg), "--seeds", "5"])  # the command line wins
    assert args.seeds == 5
    cfg.write_text('seeds = 3\nmethods = ["c"]\n')
    with pytest.raises(SystemExit):
        parse_study_args(ap, ["--config", str(cfg)])
    cfg.write_text("sedes = 3\n")
    with pytest.raises(ValueError, match="unknown keys \\['sedes'\\]"):
        parse_study_args(ap, ["--config", str(cfg)])
    with pytest.raises(TypeError, match="unknown common options"):
        study_parser("x", colour=1)


def test_load_config_merges_tables(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("a = 2\n[flow]\nn = 3\n")
    assert load_config(p, {"a": 1, "flow": {"n": 1, "m": 2}}) == {"a": 2, "flow": {"n": 3, "m": 2}}


def test_worker_cache_builds_once():
    made = []
    key = ("test", object())
    for _ in range(3):
        common.worker_cache(key, lambda: made.append(1) or len(made))
    assert made == [1]
    common._WORKER.pop(key)


@pytest.mark.parametrize("path", sorted((ROOT / "experiments" / "configs" / "studies").glob("*.toml")),
                         ids=lambda p: p.name)
def test_every_study_config_parses(path):
    """Each config under experiments/configs/studies is read by its study (named by the file's prefix)."""
    if path.name.startswith("graph_ablation"):
        from experiments.studies.graph_ablation import load_config as graph_config

        assert graph_config(str(path), False)["budget"] > 0
        return
    if path.name.startswith("compare_"):
        from experiments.studies.compare_tabular import parser
    elif path.name.startswith("bo_vs_flow"):
        from experiments.studies.bo_vs_flow import parser
    else:
        pytest.fail(f"{path.name}: no study reads this config (name it after its study)")
    args = parse_study_args(parser(), ["--config", str(path)])
    assert args.seeds >= 1
