"""Independent-networks trainable flow (issue 8 item 2): hotnas.flow_independent."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hotnas.benchmarks.trainable import DigitsBenchmark
from hotnas.graph import ArchitectureGraph
from hotnas.flow_independent import IndependentFlow, IndependentFlowResult
from hotnas.flow_trainable import FORWARD_COST, TrainableFlowResult

SMALL = dict(n_particles=2, transfer_steps=3, probe_size=64, batch_size=32, jump_every=2, eval_every=4)


def test_smoke_end_to_end_accounting_and_retraining():
    flow = IndependentFlow(jump_init="transfer", seed=0, **SMALL)
    steps = 8
    res = flow.run(steps=steps, benchmark=DigitsBenchmark(epochs=1), n_final=1)
    assert isinstance(res, IndependentFlowResult) and isinstance(res, TrainableFlowResult)
    assert res.best_arch is not None and res.test_acc is not None and 0 <= res.test_acc <= 100
    assert [c[0] for c in res.candidates] == [res.best_arch]
    assert res.best_arch == flow.ranking()[0][0]
    # every particle proposes at every jump step, accepted or not: the cost is deterministic
    N, B, n, P = 2, 32, flow.n_train, 64
    n_jumps = steps // SMALL["jump_every"]
    assert res.n_proposed == N * n_jumps == len(res.jumps)
    n_evals = len(res.history)
    assert n_evals == steps // SMALL["eval_every"]
    expected = (steps * N * B / n + N * n_jumps * (2 * FORWARD_COST * B + (3 + 3 * FORWARD_COST) * P) / n
                + n_evals * FORWARD_COST * N * flow.data.x_val.shape[0] / n)
    assert res.supernet_epochs == pytest.approx(expected, rel=1e-12)
    assert res.epochs == pytest.approx(res.supernet_epochs + res.retrain_epochs)
    assert res.retrain_epochs == 1.0
    assert IndependentFlow(jump_init="transfer", seed=0, **SMALL).steps_for_epochs(expected * 1.000001) == steps
    for j in res.jumps:
        assert j["to"] in flow.space.mutations(j["from"])


def test_transfer_jump_lowers_the_ot_distance():
    flow = IndependentFlow(jump_init="transfer", seed=1, **SMALL)
    flow.run(steps=4)
    live = [j for j in flow.jumps if j["distance_before"] is not None and j["distance_before"] > 1e-6]
    assert live, "no proposal changed the representation"
    # a candidate whose cell output is dead (node 3 all 'none') has constant layers no weight can move:
    # there the distance stays put; every other proposal lowers it
    assert sum(j["distance_after"] < 0.9 * j["distance_before"] for j in live) >= 2
    for j in live:
        assert j["distance_after"] <= j["distance_before"] + 1e-9
    assert all(j["copied"] > 0 for j in flow.jumps)   # stem and head at least


@pytest.mark.parametrize("mode", ["fresh", "carry"])
def test_fresh_and_carry_record_no_distance(mode):
    flow = IndependentFlow(jump_init=mode, seed=0, **SMALL)
    flow.run(steps=2)
    assert flow.jumps and all(j["distance_before"] is None for j in flow.jumps)
    assert all((j["copied"] == 0) == (mode == "fresh") for j in flow.jumps)


@pytest.mark.parametrize("law,T", [("upwind", 0.0), ("glauber", 1e-9)])
def test_zero_temperature_never_accepts_an_uphill_jump(law, T):
    flow = IndependentFlow(jump_init="fresh", law=law, temperature=T, seed=2, jump_dt=1.0,
                           **{**SMALL, "n_particles": 3, "jump_every": 1})
    flow.run(steps=12)
    uphill = [j for j in flow.jumps if j["f_to"] >= j["f_from"]]
    downhill = [j for j in flow.jumps if j["f_to"] < j["f_from"]]
    assert uphill, "test is vacuous: no uphill proposal"
    assert not any(j["accepted"] for j in uphill)
    assert any(j["accepted"] for j in downhill)
    if law == "glauber":   # p = 1 - exp(-24 dt T exp(-gap / 2T)) <= 24 dt T for an uphill (or level) proposal
        assert all(j["p"] <= 24 * T * (1 + 1e-9) for j in uphill)
    else:                  # upwind: the rate is exactly 0 uphill and on the level
        assert all(j["p"] == 0.0 for j in uphill)  # p = 1 - exp(-dt w (f_g - f_g') / q), q = 1/24, w = 1
        for j in downhill:
            assert j["p"] == pytest.approx(-math.expm1(-24.0 * (j["f_from"] - j["f_to"])), rel=1e-12)


def test_glauber_acceptance_probability_closed_form():
    T, dt = 0.2, 0.03
    flow = IndependentFlow(jump_init="carry", law="glauber", temperature=T, jump_dt=dt, seed=4, **SMALL)
    flow.run(steps=4)
    for j in flow.jumps:
        k = T * math.exp((j["f_from"] - j["f_to"]) / (2 * T))
        assert j["p"] == pytest.approx(1 - math.exp(-dt * k * 24), rel=1e-10)


class _TwoNeighbourGraph(ArchitectureGraph):
    """Stub graph: every cell has two neighbours (mutations of edge 0) with weights 1 and 3."""

    def __init__(self, space):
        super().__init__(space, distance="hamming", lengthscale=math.inf)

    def _row(self, arch):
        return tuple(self.space.mutations(arch)[:2]), np.array([1.0, 3.0])


def test_graph_weights_enter_rate_and_proposal():
    """k(g -> g') = w T exp(gap / 2T) and q = w / deg, so k / q = deg T exp(gap / 2T), deg = 4."""
    T, dt = 0.3, 0.02
    flow = IndependentFlow(jump_init="carry", temperature=T, jump_dt=dt, seed=3, **SMALL)
    flow.graph = _TwoNeighbourGraph(flow.space)
    flow.run(steps=8)
    for j in flow.jumps:
        assert j["to"] in flow.space.mutations(j["from"])[:2]
        assert j["p"] == pytest.approx(-math.expm1(-dt * 4 * T * math.exp((j["f_from"] - j["f_to"]) / (2 * T))),
                                       rel=1e-10)


def _trace(seed):
    flow = IndependentFlow(jump_init="transfer", seed=seed, law="metropolis", temperature=0.5, **SMALL)
    res = flow.run(steps=6)
    params = torch.cat([p.detach().reshape(-1) for net in flow.nets for p in net.parameters()])
    return ([(j["from"], j["to"], j["f_from"], j["f_to"], j["accepted"], j["distance_after"]) for j in res.jumps],
            res.history, list(flow.archs), params)


def test_reproducible_from_the_seed():
    a, b, c = _trace(5), _trace(5), _trace(6)
    assert a[0] == b[0] and a[1] == b[1] and a[2] == b[2]
    assert torch.equal(a[3], b[3])
    assert a[0] != c[0]


@pytest.mark.parametrize("policy", ["reset", "kill", "raise"])
def test_nonfinite_particle_policy(policy, caplog):
    flow = IndependentFlow(jump_init="carry", seed=0, nonfinite=policy, **{**SMALL, "n_particles": 3})
    with torch.no_grad():
        for p in flow.nets[1].parameters():
            p.fill_(float("nan"))
    if policy == "raise":
        with pytest.raises(FloatingPointError, match="particles \\[1\\]"):
            flow.step()
        return
    with caplog.at_level("WARNING", logger="hotnas.flow"):
        flow.step()
    assert any(policy in r.getMessage() or "killed" in r.getMessage() for r in caplog.records)
    ev = [e for e in flow.events if e["kind"] == f"nonfinite_{policy}"]
    assert ev and ev[0]["particles"] == [1]
    assert all(IndependentFlow._finite_net(net) for net in flow.nets)
    if policy == "kill":
        assert len(flow.nets) == len(flow.archs) == 2
    else:
        donor = ev[0]["donors"][0]
        assert donor != 1 and flow.archs[1] == flow.archs[donor]
        assert flow.nets[1] is not flow.nets[donor]
        flow.run(steps=2)          # the copy trains on independently
        assert all(IndependentFlow._finite_net(net) for net in flow.nets)


def test_langevin_noise_has_the_euler_maruyama_scale():
    """With lr tiny the SGD drift is negligible: the step adds N(0, 2 lr T_x) to every weight."""
    lr, Tx = 1e-8, 1e6
    flow = IndependentFlow(optimizer="sgd", lr=lr, weight_temperature=Tx, seed=0, **{**SMALL, "n_particles": 1,
                                                                                       "jump_every": 100})
    before = torch.cat([p.detach().reshape(-1).clone() for p in flow.nets[0].parameters()])
    flow.step()
    after = torch.cat([p.detach().reshape(-1) for p in flow.nets[0].parameters()])
    d = (after - before).double()
    assert d.numel() > 500
    assert d.std().item() == pytest.approx(math.sqrt(2 * lr * Tx), rel=0.1)
    assert abs(d.mean().item()) < 4 * math.sqrt(2 * lr * Tx) / math.sqrt(d.numel())


@pytest.mark.parametrize("kwargs,match", [
    (dict(n_particles=0), "n_particles"),
    (dict(jump_init="morphism"), "jump_init"),
    (dict(optimizer="rmsprop"), "optimizer"),
    (dict(law="logmean"), "no jump rate"),
    (dict(law="bogus"), "unknown rate law"),
    (dict(law="glauber", temperature=0.0), "temperature=0"),
    (dict(temperature=-1.0), "temperature"),
    (dict(lr=0.0), "lr"),
    (dict(lr=float("nan")), "lr"),
    (dict(jump_dt=-1.0), "jump_dt"),
    (dict(weight_temperature=0.1), "needs optimizer='sgd'"),
    (dict(batch_size=1), "batch_size"),
    (dict(batch_size=10**6), "batch_size"),
    (dict(probe_size=1), "probe_size"),
    (dict(transfer_steps=-1), "transfer_steps"),
    (dict(nonfinite="ignore"), "nonfinite"),
    (dict(lr_schedule="step"), "lr_schedule"),
    (dict(init=["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"]), "init lists 1"),
    (dict(init="grid"), "init"),
    (dict(init=["|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|"] * 4), "bogus"),
])
def test_bad_settings_are_refused_up_front(kwargs, match):
    with pytest.raises(ValueError, match=match):
        IndependentFlow(**kwargs)


def test_bad_budgets_are_refused():
    flow = IndependentFlow(seed=0, **SMALL)
    with pytest.raises(ValueError, match="exactly one"):
        flow.run()
    with pytest.raises(ValueError, match="exactly one"):
        flow.run(steps=2, epochs=1.0)
    with pytest.raises(ValueError, match="at least one"):
        flow.run(epochs=1e-6)
    with pytest.raises(ValueError, match="n_final"):
        flow.run(steps=1, n_final=-1)
    assert flow.step_count == 0


def test_study_smoke(tmp_path):
    from experiments.studies import independent_flow

    out = independent_flow.main(["--smoke", "--out", str(tmp_path)])
    assert (tmp_path / "table.md").exists() and (tmp_path / "results.json").exists()
    assert (tmp_path / "independent_flow.png").exists()
    summary = out["summary"]
    assert set(summary) == {"fresh", "carry", "transfer"}
    epochs = [summary[m]["flow_epochs_mean"] for m in summary]
    assert max(epochs) - min(epochs) < 0.5   # same compute for every mode (to one step)
    for m in summary:
        assert 0 <= summary[m]["test_acc_mean"] <= 100
