"""The supernet flow as an optimiser: equal-compute accounting, refusals, exact resume from a data-only
checkpoint, selection by name from a config, the NaN policy."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from hotnas.benchmarks.base import Evaluation
from hotnas.benchmarks.digits_table import NB201SubSpace
from hotnas.optimisers import get_optimiser

SUB = NB201SubSpace(("none", "skip_connect", "nor_conv_3x3"))
TINY = dict(n_particles=3, channels=2, eval_every=4, jump_every=2, batch_size=32, distance="hamming")


def _opt(**kw):
    return get_optimiser("supernet-flow", SUB, seed=1, **{**TINY, "budget": 4, "epochs_per_query": 0.5, **kw})


def test_equal_compute_per_query_and_distinct_proposals():
    opt = _opt()
    step = opt.flow.cost_from_start(1)
    asked = []
    for k in range(1, 4):
        a = opt.ask(1)
        asked += a
        opt.tell([Evaluation(a[0], 10.0)])
        # the flow's accounted epochs never exceed k queries' worth, and miss it by less than one step
        # plus one validation scoring
        assert opt.flow.epochs <= k * 0.5 + 1e-9
        val_cost = opt.flow.n_particles * opt.flow.data.x_val.shape[0] / opt.flow.n_train / 3
        assert opt.flow.epochs > k * 0.5 - step - val_cost
        assert opt.recommend() in SUB.enumerate() or opt.recommend() is None
    assert len(set(asked)) == 3
    assert abs(sum(opt.masses().values()) - 1.0) < 1e-12


def test_refusals_name_the_value():
    with pytest.raises(ValueError, match="allows no step"):
        _opt(budget=1, epochs_per_query=0.01)
    with pytest.raises(ValueError, match="epochs_per_query"):
        _opt(epochs_per_query=0)
    with pytest.raises(ValueError, match="momentum"):
        _opt(momentum=1.5)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda'"):
            _opt(device="cuda")


def test_resume_from_data_only_checkpoint_is_exact():
    from experiments.rundir import from_data, to_data

    a = _opt(momentum=0.5, lr=0.3)
    for _ in range(2):
        x = a.ask(1)
        a.tell([Evaluation(x[0], 1.0)])
    arrays: dict = {}
    blob = json.dumps(to_data(a.state_dict(), arrays))         # JSON text + numpy arrays, nothing else
    assert all(isinstance(v, np.ndarray) for v in arrays.values())
    b = _opt(momentum=0.5, lr=0.3)
    b.load_state_dict(from_data(json.loads(blob), {k: v.copy() for k, v in arrays.items()}))
    xa, xb = a.ask(1), b.ask(1)
    assert xa == xb
    assert torch.equal(a.flow.theta, b.flow.theta) and torch.equal(a.flow.velocity, b.flow.velocity)
    assert a.flow.archs == b.flow.archs and a.recommend() == b.recommend()


def test_selected_by_name_in_a_config(tmp_path):
    from experiments.config import ConfigError, load_config

    text = """
name = "t"
[benchmark]
name = "digits-nb201"
[search]
budget = 4
seeds = [0]
[[methods]]
optimiser = "supernet-flow"
options = { n_particles = 4, momentum = 0.9, lr = 0.3 }
"""
    p = tmp_path / "c.toml"
    p.write_text(text)
    cfg = load_config(p)
    assert cfg.methods[0].optimiser == "supernet-flow" and cfg.methods[0].options["momentum"] == 0.9
    p.write_text(text.replace("n_particles = 4", "n_particle = 4"))
    with pytest.raises(ConfigError, match="n_particles"):
        load_config(p)


def test_diverging_particle_is_reset_and_logged(caplog):
    opt = _opt(nonfinite="reset", n_particles=3)
    opt.flow.theta[1, :5] = float("nan")                    # particle 1 has diverged
    with caplog.at_level(logging.WARNING, logger="hotnas.flow"):
        opt.ask(1)
    ev = [e for e in opt.flow.events if e["kind"] == "nonfinite_reset"]
    assert ev and ev[0]["particles"] == [1] and ev[0]["donors"][0] in (0, 2)
    assert any("reset particle(s) [1]" in r.getMessage() for r in caplog.records)
    assert torch.isfinite(opt.flow.theta).all()
    kill = _opt(nonfinite="kill", n_particles=3, birth_death=0.0)
    kill.flow.theta[2, 0] = float("inf")
    kill.ask(1)
    assert len(kill.flow.archs) == 2 and kill.flow.events[0]["kind"] == "nonfinite_kill"


def test_retraining_phase_pays_per_finalist_and_recommends_the_best_told():
    opt = _opt(budget=5, retrain_queries=2)
    for k in range(3):                                        # supernet phase: values are ignored
        a = opt.ask(1)
        opt.tell([Evaluation(a[0], 99.0 if k == 0 else 1.0)])
    e = opt.flow.epochs
    assert opt.recommend() in [x for x, _ in opt._current()]   # not the 99 told above
    finals = []
    for v in (40.0, 60.0):                                    # retraining phase: no supernet compute
        a = opt.ask(1)
        finals += a
        opt.tell([Evaluation(a[0], v)])
        assert opt.flow.epochs == e
    distinct, cells = [], set()                               # the best weight-shared, one per cell
    for x, _ in opt.flow.ranking():
        if SUB.cell_hash(x) not in cells:
            cells.add(SUB.cell_hash(x))
            distinct.append(x)
    assert finals == distinct[:2] and opt.recommend() == finals[1]
    with pytest.raises(ValueError, match="retrain_queries"):
        _opt(budget=3, retrain_queries=3)
