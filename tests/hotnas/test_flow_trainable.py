"""The trainable-mode flow (d > 0): supernet weights per particle, jumps at fixed weights, retraining."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
import torch

from hotnas.benchmarks.trainable import DigitsBenchmark
from hotnas.flow_trainable import TrainableFlow, TrainableFlowResult


def unit_distance(A, B):
    return np.ones(len(A))


def small(**kw):
    kw.setdefault("distance", unit_distance)
    kw.setdefault("n_particles", 4)
    kw.setdefault("eval_every", 5)
    kw.setdefault("jump_every", 2)
    return TrainableFlow(seed=kw.pop("seed", 0), **kw)


def test_end_to_end_smoke_under_60_seconds():
    t0 = time.perf_counter()
    flow = small(temperature=(0.5, 0.05), birth_death=0.5)
    res = flow.run(steps=12, benchmark=DigitsBenchmark(epochs=1), n_final=2)
    assert time.perf_counter() - t0 < 60
    assert isinstance(res, TrainableFlowResult)
    assert res.best_arch in {c[0] for c in res.candidates} and len(res.candidates) == 2
    assert 0 <= res.val_acc <= 100 and 0 <= res.test_acc <= 100
    assert res.retrain_epochs == 2.0 and res.epochs == pytest.approx(res.supernet_epochs + 2.0)
    assert flow.n_proposed == 6 * 4 and 0 <= flow.n_accepted <= flow.n_proposed
    assert len(res.history) == 3 and all(len(h["particles"]) == 4 for h in res.history)


def test_epoch_budget_is_respected_and_refused_when_too_small():
    flow = small()
    steps = flow.steps_for_epochs(3.0)
    assert steps >= 1
    res = flow.run(epochs=3.0, benchmark=None)
    assert res.supernet_epochs <= 3.0 + 1e-9 and flow.step_count == steps
    assert res.supernet_epochs == pytest.approx(small().cost_of_steps(steps))
    assert small().cost_of_steps(steps + 1) > 3.0
    with pytest.raises(ValueError, match="at least one"):
        small().run(epochs=1e-4)
    with pytest.raises(ValueError, match="exactly one"):
        small().run()


def test_the_jump_keeps_the_weights_and_uses_the_rate_law():
    # upwind at a fixed temperature: only proposals with a strictly lower minibatch loss are taken,
    # and the particle's weights are untouched by a jump
    flow = small(law="upwind", temperature=1.0, jump_dt=1e6, jump_every=1, lr=1e-9)
    theta0 = flow.theta.clone()
    xb, yb = flow._minibatch()
    before = list(flow.archs)
    A = __import__("hotnas.supernet", fromlist=["encode_arch"]).encode_arch
    f0 = flow.supernet.losses(flow.theta, A(before), xb, yb)
    flow._jump(xb, yb)
    f1 = flow.supernet.losses(flow.theta, A(flow.archs), xb, yb)
    assert torch.equal(flow.theta, theta0)
    for a, b, l0, l1 in zip(before, flow.archs, f0, f1):
        if a != b:
            assert l1 < l0                       # downhill only
    assert flow.n_proposed == 4


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_state_dict_resume_gives_identical_continuation(momentum):
    a = small(seed=3, birth_death=0.5, momentum=momentum, weight_temperature=1e-6)
    a.total_steps = 12
    for _ in range(3):
        a.step()
    b = small(seed=99, birth_death=0.5, momentum=momentum, weight_temperature=1e-6)
    b.load_state_dict(a.state_dict())
    for _ in range(3):
        a.step()
        b.step()
    assert torch.equal(a.theta, b.theta) and a.archs == b.archs and a.epochs == b.epochs


@pytest.mark.parametrize("policy", ["reset", "kill", "raise"])
def test_nan_policy(policy, caplog):
    flow = small(nonfinite=policy)
    flow.total_steps = 10
    flow.theta[1] = float("nan")  # a diverged particle
    if policy == "raise":
        with pytest.raises(FloatingPointError, match="non-finite"):
            flow.step()
        return
    with caplog.at_level(logging.WARNING, logger="hotnas.flow"):
        flow.step()
    assert torch.isfinite(flow.theta).all()
    kind = "nonfinite_" + policy
    assert any(e["kind"] == kind and 1 in e["particles"] for e in flow.events)
    assert ("reset" if policy == "reset" else "killed") in caplog.text
    assert len(flow.archs) == (4 if policy == "reset" else 3) == flow.theta.shape[0]


def test_all_particles_diverged_is_an_error():
    flow = small(nonfinite="reset")
    flow.total_steps = 10
    flow.theta[:] = float("nan")
    with pytest.raises(RuntimeError, match="every particle"):
        flow.step()


def test_unworkable_settings_are_refused():
    with pytest.raises(ValueError, match="n_particles"):
        small(n_particles=0)
    with pytest.raises(ValueError, match="at least 2 particles"):
        small(n_particles=1, birth_death=1.0)
    with pytest.raises(ValueError, match="lr"):
        small(lr=0.0)
    with pytest.raises(ValueError, match="momentum"):
        small(momentum=1.0)
    with pytest.raises(ValueError, match="nonlinear|jump rate"):
        small(law="logmean")
    with pytest.raises(ValueError, match="init lists"):
        small(init=["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
    with pytest.raises(ValueError, match="temperatures must be finite"):
        small(temperature=(1.0, -1.0))


def test_zero_temperature_with_upwind_takes_only_downhill_jumps():
    # the same rule as the independent flow (one FlowBase): T = 0 needs upwind, and birth-death needs T > 0
    flow = small(law="upwind", temperature=0.0, jump_every=1, lr=1e-9)
    flow.run(steps=4, benchmark=None)
    assert flow.temperature() == 0.0 and flow.n_proposed == 16
    with pytest.raises(ValueError, match="temperature=0"):
        small(law="glauber", temperature=0.0)
    with pytest.raises(ValueError, match="birth-death needs a temperature"):
        small(law="upwind", temperature=0.0, birth_death=0.5)


def test_train_neighbours_trains_on_proposed_neighbours_only_when_asked():
    flow = small(train_neighbours=1.0)
    trained = flow._trained_archs()
    # every particle is trained on a neighbour of its architecture: one mutation away, never itself
    assert all(flow.graph.canonical(t) != flow.graph.canonical(a) for t, a in zip(trained, flow.archs))
    assert all(t in set(flow.space.mutations(a)) for t, a in zip(trained, flow.archs))
    plain = small()
    state = plain.rng.bit_generator.state
    assert plain._trained_archs() == plain.archs and plain.rng.bit_generator.state == state  # p = 0 draws nothing
    half = small(train_neighbours=0.5, n_particles=64)
    moved = np.mean([t != a for t, a in zip(half._trained_archs(), half.archs)])
    assert 0.3 < moved < 0.7
    for bad in (-0.1, 1.5, float("nan"), "0.5"):
        with pytest.raises(ValueError, match="train_neighbours"):
            small(train_neighbours=bad)


def test_train_neighbours_resumes_identically():
    a = small(train_neighbours=0.5)
    a.run(steps=4, benchmark=None)
    b = small(train_neighbours=0.5)
    b.load_state_dict(a.state_dict())
    a.run(steps=3, benchmark=None)
    b.run(steps=3, benchmark=None)
    assert a.archs == b.archs and torch.equal(a.theta, b.theta)
