"""The optimum-rate study (issue 17): disjoint samples, a feasible rounding, and a reference that is a
true lower envelope of POT's runs."""

import numpy as np
import pytest

from experiments.studies import optimum_rate as om


def test_round_plan_is_a_coupling():
    rng = np.random.default_rng(0)
    a, b = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(6))
    T = np.outer(a, b) * rng.uniform(0.5, 1.5, (4, 6))  # off the marginals both ways
    R = om.round_plan(T, a, b)
    assert np.allclose(R.sum(1), a, atol=1e-14) and np.allclose(R.sum(0), b, atol=1e-14)
    assert R.min() >= 0.0
    # a feasible plan is left as it is
    P = np.outer(a, b)
    assert np.allclose(om.round_plan(P, a, b), P, atol=1e-15)


def test_samples_are_disjoint_and_reproducible():
    tune = om.sample_pairs(400, 40)
    report = om.sample_pairs(200, 40, exclude=set(tune))
    assert len(set(tune)) == 40 and not set(tune) & set(report)
    assert om.sample_pairs(400, 40) == tune
    from hotnas.spaces import get_space

    sp = get_space("nb201")
    for a, b in report[:10]:
        assert b in sp.mutations(a)  # an edge of the mutation graph ...
        assert sp.to_cell(a).canonical_hash != sp.to_cell(b).canonical_hash  # ... between distinct cells


def test_reference_is_below_pot_and_resumes(tmp_path):
    import ot

    from hotnas.distances.features import feature_cost_matrix
    from hotnas.distances.ifgw import IFGWOptions

    pairs = om.sample_pairs(7, 3)
    ref = om.reference_values(pairs, tmp_path)
    fa, fb = om._features(pairs)
    opt = IFGWOptions()
    for r, f, g in zip(ref, fa, fb):
        M = feature_cost_matrix(f, g, opt.lambda_op)
        pot = ot.gromov.fused_gromov_wasserstein2(M, f.flow, g.flow, f.masses, g.masses, loss_fun="square_loss",
                                                  symmetric=False, alpha=opt.alpha)
        assert 0.0 <= r <= float(pot) + 1e-12
    z = np.load(tmp_path / "reference.npz")
    assert len(z["keys"]) == 3
    # a second call reads the file: poison one stored value and see it come back
    np.savez(tmp_path / "reference.npz", keys=z["keys"], ref=z["ref"] + 1.0)
    assert np.allclose(om.reference_values(pairs, tmp_path), ref + 1.0)
    res = om.rates(pairs, ref, ["fast"])
    assert 0 <= res["fast"]["at_optimum"] <= 3 and res["fast"]["cpu_us_per_pair"] > 0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown setting 'nope'"):
        om._options("nope")
    with pytest.raises(SystemExit):
        om.main(["--pairs", "0"])


def test_accurate_starts_use_the_setting_chosen_on_the_tuning_sample():
    # the README's optimum-rate figure is of "s20_eps002"; ACCURATE_STARTS must run exactly that setting,
    # and "accurate" must keep meaning the earlier one (so the study's table reproduces)
    from hotnas.distances.ifgw import ACCURATE_STARTS, IFGWOptions

    assert om._options("s20_eps002") == IFGWOptions(starts=ACCURATE_STARTS)
    assert om._options("accurate") != IFGWOptions(starts=ACCURATE_STARTS)
    assert om._options("accurate").entropic_epsilon == (0.01, 0.05) and om._options("accurate").sinkhorn_iters == 10
