"""The tabular gradient-flow optimiser (d = 0) on a small synthetic space whose optimum is known."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest

from hotnas.benchmarks.base import Evaluation
from hotnas.optimisers import get_optimiser, run_search
from hotnas.optimisers.flow import FlowOptimiser, temperature_schedule

from toy_components import BitSpace, ToyBenchmark

N_BITS = 7
OPT = "1" * N_BITS


def hamming(A, B):
    return np.array([sum(x != y for x, y in zip(a, b)) for a, b in zip(A, B)], dtype=float)


def make(seed=0, **kw):
    kw.setdefault("engine", hamming)
    kw.setdefault("lengthscale", 1.0)
    return FlowOptimiser(BitSpace(N_BITS), seed=seed, **kw)


def all_evaluations(bench):
    return [bench.query(a) for a in bench.space.enumerate()]


class CountingBenchmark(ToyBenchmark):
    """Records every architecture it evaluates (to check budgets and distinctness)."""

    def __init__(self, *a, nan_if=None, **kw):
        super().__init__(*a, **kw)
        self.asked: list[str] = []
        self.nan_if = nan_if

    def _evaluate(self, arch):
        self.asked.append(arch)
        ev = super()._evaluate(arch)
        if self.nan_if is not None and self.nan_if(arch):
            return Evaluation(arch, float("nan"), None, 1.0)
        return ev


def test_registered_and_reaches_the_known_optimum():
    bench = CountingBenchmark(N_BITS)
    opt = get_optimiser("flow", bench.space, seed=3, budget=60, engine=hamming, lengthscale=1.0)
    assert isinstance(opt, FlowOptimiser)
    res = run_search(opt, bench, budget=60)
    assert res.best_so_far[-1] == pytest.approx(bench.optimum)
    assert opt.recommend() == OPT


def test_mass_concentrates_on_the_optimum_as_T_goes_to_zero():
    """Every architecture told up front; the free dynamics then samples Gibbs pi_T ∝ exp(-f/T)
    (glauber, one jump per small step, no birth-death) and concentrates on the optimum as T -> 0."""
    bench = ToyBenchmark(4)
    evals = all_evaluations(bench)
    values = {ev.arch: ev.value for ev in evals}
    archs = list(values)
    f = -np.array([values[a] for a in archs])
    at_opt = []
    for T in (3.0, 1.0, 0.1):
        opt = FlowOptimiser(BitSpace(4), seed=1, n_particles=300, budget=10_000, temperature=T, birth_death=0.0,
                            dt=0.2, jump_method="single", stall_rounds=10_000, engine=hamming, lengthscale=1.0)
        opt.tell(evals)
        assert opt.advance(250) == 250
        # time average of the occupancy over the second half (stationary regime)
        m = np.zeros(len(archs))
        for h in opt.history[-125:]:
            m += np.array([h["mass"].get(a, 0) for a in archs]) / 300 / 125
        gibbs = np.exp(-(f - f.min()) / T)
        gibbs /= gibbs.sum()
        tv = 0.5 * np.abs(m - gibbs).sum()
        assert tv < 0.06, (T, tv)  # O(dt) bias of one jump per step + sampling noise
        at_opt.append(m[archs.index("1111")])
    assert at_opt[0] < at_opt[1] < at_opt[2]
    assert at_opt[2] > 0.95


def test_annealed_search_puts_the_mass_on_the_optimum():
    bench = ToyBenchmark(N_BITS)
    opt = make(seed=5, n_particles=10, budget=80, temperature=(1.0, 0.02))
    run_search(opt, bench, budget=80)
    opt.advance(200)  # a little more free time at the final (low) temperature
    assert opt.mass().get(OPT, 0.0) >= 0.8
    assert opt.history and sum(opt.history[-1]["mass"].values()) == len(opt.particles)


@pytest.mark.parametrize("batch", [1, 4, 7])
@pytest.mark.parametrize("kw", [{}, {"rule": "nasgd", "dt": 0.05}, {"rule": "nasagd", "dt": 0.05},
                                {"law": "metropolis"}, {"law": "upwind"}])
def test_never_spends_more_than_its_budget_and_never_repeats(batch, kw):
    bench = CountingBenchmark(N_BITS)
    opt = make(seed=2, budget=37, **kw)
    n = 0
    while archs := opt.ask(batch):  # driven by hand: the flow's own budget is the only limit
        opt.tell([bench.query(a) for a in archs])
        n += len(archs)
    assert bench.n_queries == n <= 37
    assert len(set(bench.asked)) == len(bench.asked)
    assert opt.ask(5) == []  # budget spent


def test_budget_larger_than_the_space_stops_when_everything_is_evaluated():
    bench = CountingBenchmark(4)
    opt = FlowOptimiser(BitSpace(4), seed=0, budget=500, n_particles=4, engine=hamming, stall_rounds=3)
    res = run_search(opt, bench, budget=500)
    assert len(res.values) <= 16 and len(set(bench.asked)) == len(bench.asked)


def test_state_dict_resume_gives_identical_continuation():
    kw = dict(budget=90, n_particles=6, temperature=(1.0, 0.05))
    bench = ToyBenchmark(N_BITS)
    a = make(seed=11, **kw)
    first = run_search(a, bench, budget=40, batch_size=3)
    state = json.loads(json.dumps(a.state_dict()))  # plain data, JSON round trip
    b = make(seed=999, **kw)
    b.load_state_dict(state)
    rest_a = run_search(a, bench, budget=50, batch_size=3)
    rest_b = run_search(b, bench, budget=50, batch_size=3)
    assert rest_a.archs == rest_b.archs and len(first.archs) == 40
    assert a.particles == b.particles and a.history == b.history


def test_state_dict_mid_round_with_outstanding_asks():
    bench = ToyBenchmark(N_BITS)
    a = make(seed=4, budget=60, rule="nasagd", dt=0.05)
    run_search(a, bench, budget=20)
    asked = a.ask(3)
    b = make(seed=0, budget=60, rule="nasagd", dt=0.05)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    evals = [bench.query(x) for x in asked]
    a.tell(evals)
    b.tell(evals)
    assert run_search(a, bench, budget=30).archs == run_search(b, bench, budget=30).archs
    assert a.phi == b.phi


def test_surrogate_hybrid_runs_within_budget():
    pytest.importorskip("scipy")
    bench = CountingBenchmark(N_BITS)
    opt = make(seed=0, budget=40, surrogate="gp", gp_options={"n_restarts": 1}, refit_every=15)
    res = run_search(opt, bench, budget=40)
    assert len(res.values) <= 40 and len(set(bench.asked)) == len(bench.asked)
    assert res.best_so_far[-1] >= 8.0


@pytest.mark.parametrize("policy", ["reset", "kill"])
def test_nan_evaluations_fail_the_architecture_and_are_logged(policy, caplog):
    # architectures with a leading "0" and at least three ones "diverge"
    nan_if = lambda a: a[0] == "0" and a.count("1") >= 3  # noqa: E731
    bench = CountingBenchmark(N_BITS, nan_if=nan_if)
    opt = make(seed=7, budget=70, n_particles=8, nonfinite=policy)
    with caplog.at_level(logging.WARNING, logger="hotnas.flow"):
        res = run_search(opt, bench, budget=70)
    assert opt.failed and all(nan_if(a) for a in opt.failed)
    assert all(math.isfinite(v) for v in opt.values.values())
    assert not any(a in opt.failed for a in opt.particles)
    assert any(e["kind"] == "nonfinite" for e in opt.events)
    assert "marked failed" in caplog.text
    assert len(set(bench.asked)) == len(bench.asked) and len(res.values) <= 70
    if policy == "kill":
        assert 1 <= len(opt.particles) <= 8


def test_nan_surrogate_particles_step_back_or_reset():
    nan_if = lambda a: a.count("1") == 4  # noqa: E731
    bench = CountingBenchmark(N_BITS, nan_if=nan_if)
    opt = make(seed=1, budget=40, surrogate="gp", gp_options={"n_restarts": 0})
    run_search(opt, bench, budget=40)
    assert not any(a in opt.failed for a in opt.particles)


def test_nan_raise_policy():
    bench = CountingBenchmark(N_BITS, nan_if=lambda a: True)
    opt = make(seed=0, budget=30, nonfinite="raise")
    with pytest.raises(ValueError, match="not finite"):
        run_search(opt, bench, budget=30)


def test_unworkable_settings_are_refused_up_front():
    space = BitSpace(3)
    with pytest.raises(ValueError, match="n_particles"):
        FlowOptimiser(space, n_particles=0, engine=hamming)
    FlowOptimiser(space, n_particles=9, budget=100, engine=hamming)  # particles may share nodes
    with pytest.raises(ValueError, match="cannot work"):
        FlowOptimiser(BitSpace(6), n_particles=10, budget=10, engine=hamming)
    with pytest.raises(ValueError, match="at least 2 particles"):
        FlowOptimiser(space, n_particles=1, budget=5, engine=hamming)
    FlowOptimiser(space, n_particles=1, budget=5, birth_death=0.0, engine=hamming)  # fine without birth-death
    with pytest.raises(ValueError, match="rule"):
        FlowOptimiser(space, n_particles=2, rule="adam", engine=hamming)
    with pytest.raises(ValueError, match="nonlinear"):
        FlowOptimiser(space, n_particles=2, law="logmean", engine=hamming)
    with pytest.raises(ValueError, match="temperatures must be finite"):
        FlowOptimiser(space, n_particles=2, temperature=(1.0, 0.0), engine=hamming)
    with pytest.raises(ValueError, match="dt"):
        FlowOptimiser(space, n_particles=2, dt=-1.0, engine=hamming)
    with pytest.raises(ValueError, match="budget must be an integer"):
        FlowOptimiser(space, n_particles=2, budget=12.5, engine=hamming)


def test_temperature_schedule_reaches_T1_at_the_horizon():
    sched = temperature_schedule((2.0, 0.02), 100)
    assert sched(0.0, 0) == pytest.approx(2.0)
    assert sched(0.5, 50) == pytest.approx(0.2)
    assert sched(1.0, 100) == pytest.approx(0.02)
    assert temperature_schedule(0.7, 10)(0.3, 3) == 0.7
    assert temperature_schedule(lambda s: 1 - 0.5 * s, 10)(1.0, 10) == 0.5
