"""NASGD and NASAGD label rules (spec semi-discrete-flow.md 6.4, 6.5, 7.2, 8.3) on synthetic ladders."""

import math

import numpy as np
import pytest

from sdot import SemiDiscreteSpace
from sdot.nas_rules import (NASAGD, NASGD, QuadraticLadder, label_jump_step, nasagd_mean_field, nasgd_mean_field,
                            nasgd_probabilities, nasgd_step, restart_statistic, steps_to_reach)
from sdot.particles import NonFiniteError, ParticleState

N = 20_000


def _within(frac, m, n_particles, k=4.5):
    """|N_g/N - m_g| <= k sigma + 2/N per node (particles are independent given the energies, so
    N_g ~ Binomial(N, m_g) exactly for the 'expected' mean field)."""
    se = np.sqrt(m * (1 - m) / n_particles)
    return np.abs(frac - m) <= k * se + 2.0 / n_particles


def test_nasgd_two_node_binomial_law():
    """Spec 8.3 through the NASGD rule: count on the high node ~ Binomial(N1, (1 - dt c w gap)^n)."""
    space = SemiDiscreteSpace.path(2)
    E = np.array([1.3, 0.5])
    R, N0, dt, c, n = 500, 200, 0.02, 2.0, 15
    s = ParticleState.from_labels(np.zeros(R * N0, dtype=int), rng=0)
    for _ in range(n):
        nasgd_step(s, space, E, dt, c)
    q = (1 - dt * c * 0.8) ** n
    counts = np.bincount(np.arange(R * N0) // N0, weights=(s.g == 0).astype(float), minlength=R)
    z = (counts - N0 * q) / math.sqrt(N0 * q * (1 - q))
    assert abs(z.mean()) < 4 / math.sqrt(R) and abs(z.var() - 1) < 4 * math.sqrt(2 / R)
    s2 = ParticleState.from_labels(np.ones(1000, dtype=int), rng=1)
    nasgd_step(s2, space, E, dt, c)
    assert np.all(s2.g == 1)  # downhill only


def _slope_ladder():
    # per-node curvatures differ, so the training transients differ between nodes
    K = 20
    lad = QuadraticLadder(a=np.linspace(0.5, 1.5, K), c=1.0 - np.arange(K) / (K - 1),
                          m=np.c_[np.full(K, 1.0), np.zeros(K)], lr=0.1)
    return lad


def test_nasgd_ladder_matches_mean_field():
    lad = _slope_ladder()
    K, dt, c, n = lad.n_nodes, 0.01, 3.0, 300
    E = lad.energy_table(n)
    m0 = np.zeros(K)
    m0[0] = 1.0
    expected = nasgd_mean_field(lad.space, E, m0, dt, n, c, scheme="expected")
    ode = nasgd_mean_field(lad.space, E, m0, dt, n, c, scheme="ode")
    rule = NASGD(lad.space, dt, c)
    s = ParticleState.from_labels(np.zeros(N, dtype=int), rng=2)
    for k in range(n):
        rule.step(s, E[k])
        if (k + 1) % 100 == 0:
            frac = s.node_fractions(K)
            assert np.all(_within(frac, expected[k + 1], N)), k
            # the ODE differs from the explicit rule's expectation by O(dt)
            bias = np.abs(expected[k + 1] - ode[k + 1]).max()
            assert bias < 0.5 * dt * c * 2
            assert np.abs(frac - ode[k + 1]).max() < 5 / math.sqrt(N) + bias
    assert (s.node_fractions(K) > 0.01).sum() >= 4  # the mass did travel down the ladder


def test_nasgd_mean_field_bias_is_first_order_in_dt():
    lad = _slope_ladder()
    K, c, t = lad.n_nodes, 3.0, 1.0
    m0 = np.eye(K)[0]
    errs = []
    for dt in (0.02, 0.01):
        n = int(round(t / dt))
        E = np.repeat(lad.energy_table(1), n, axis=0)  # frozen energies: a clean time-step study
        e = nasgd_mean_field(lad.space, E, m0, dt, n, c, "expected")[-1]
        o = nasgd_mean_field(lad.space, E, m0, dt, n, c, "ode")[-1]
        errs.append(np.abs(e - o).max())
    assert 1.6 < errs[0] / errs[1] < 2.4


def test_nasagd_ladder_matches_mean_field():
    lad = QuadraticLadder.slope(K=20, drop=1.0, a=1.0, spread=1.0, lr=0.1)
    K, dt, c, c_p, n = lad.n_nodes, 0.01, 3.0, 2.0, 300
    E = lad.energy_table(n)
    m0 = np.eye(K)[0]
    m_mf, phi_mf, restarts_mf = nasagd_mean_field(lad.space, E, m0, dt, n, c, c_p, scheme="expected")
    rule = NASAGD(lad.space, dt, c, c_p, restart_single_support=False)
    s = ParticleState.from_labels(np.zeros(N, dtype=int), rng=3)
    for k in range(n):
        rule.step(s, E[k])
        if (k + 1) % 100 == 0:
            assert np.all(_within(s.node_fractions(K), m_mf[k + 1], N)), k
    np.testing.assert_allclose(rule.phi, phi_mf[-1])
    assert rule.restarts == restarts_mf == [0]


def test_nasagd_reaches_the_best_node_first_on_a_long_plateau():
    """Plateau of 18 nodes falling by 0.05 each: NASGD crosses at rate c * 0.05 per node, NASAGD's
    velocity potential accumulates the gaps (mean field: ~3,700 vs ~33,500 steps)."""
    lad = QuadraticLadder.plateau(K=20, first_drop=1.0, plateau_slope=0.05, last_drop=1.0)
    K, dt, c, c_p, n_max = lad.n_nodes, 0.01, 1.0, 2.0, 8000
    E = lad.energy_table(n_max)
    best = lad.best_node
    fr = {}
    for name, rule in (("nasagd", NASAGD(lad.space, dt, c, c_p)), ("nasgd", NASGD(lad.space, dt, c))):
        s = ParticleState.from_labels(np.zeros(1000, dtype=int), rng=4)
        traj = []
        for k in range(n_max):
            rule.step(s, E[k])
            traj.append(s.node_fractions(K))
            if name == "nasagd" and traj[-1][best] >= 0.5:
                n_max = k + 1  # run plain NASGD for the same number of steps
                break
        fr[name] = np.array(traj)
    steps_agd = steps_to_reach(fr["nasagd"], best)
    assert steps_agd is not None and steps_agd < 6000
    assert steps_to_reach(fr["nasgd"], best) is None  # NASGD has not got there in as many steps
    assert fr["nasgd"][-1, best] < 0.05


def test_nasagd_gradient_restart_and_single_support_restart():
    space = SemiDiscreteSpace.path(3)
    s = ParticleState.from_labels(np.repeat([0, 1, 2], 200), rng=5)
    rule = NASAGD(space, dt=0.01, c=1.0, c_p=2.0, restart_single_support=False)
    for _ in range(10):
        rule.step(s, [0.0, 1.0, 2.0])
    assert rule.restarts == [0] and rule.phi[0] > rule.phi[2]
    counts = s.node_counts(3)
    # energies flip: phi now points uphill, S >= 0, restart
    assert restart_statistic(space, [2.0, 1.0, 0.0], rule.phi, counts) > 0
    rule.step(s, [2.0, 1.0, 0.0])
    assert rule.restarts == [0, 10]
    np.testing.assert_allclose(rule.phi, -0.01 / 2.0 * np.array([2.0, 1.0, 0.0]))
    # all particles on one node: the reference code restarts every step
    one = NASAGD(space, dt=0.01, c=0.01, c_p=2.0)
    s1 = ParticleState.from_labels(np.zeros(50, dtype=int), rng=6)
    for _ in range(5):
        one.step(s1, [1.0, 0.0, 0.5])
    assert one.restarts == [0, 1, 2, 3, 4]
    twin = NASAGD(space).load_state_dict(one.state_dict())
    np.testing.assert_array_equal(twin.phi, one.phi)
    assert twin.restarts == one.restarts


def test_restart_scope_support_only_resets_the_active_neighbourhood():
    space = SemiDiscreteSpace.path(5)
    rule = NASAGD(space, dt=0.01, c=0.01, restart_scope="support")
    rule.phi[:] = [-1.0, -1.0, -1.0, -1.0, -1.0]
    s = ParticleState.from_labels(np.zeros(10, dtype=int), rng=7)
    rule.step(s, np.zeros(5))
    np.testing.assert_array_equal(rule.phi, [0.0, 0.0, -1.0, -1.0, -1.0])


def test_label_jumps_refuse_or_substep_large_probabilities():
    space = SemiDiscreteSpace.complete(3)
    s = ParticleState.from_labels(np.zeros(1000, dtype=int), rng=8)
    E = np.array([10.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="sum to 2 >= 1"):
        nasgd_step(s, space, E, dt=0.1, c=1.0, on_large_step="raise")
    with pytest.warns(RuntimeWarning, match="sub-steps"):
        nasgd_step(s, space, E, dt=0.1, c=1.0)
    assert s.info.substeps == 4


def test_nonfinite_energies_follow_the_policy():
    space = SemiDiscreteSpace.path(3)
    E = np.array([np.nan, 1.0, 0.0])
    g0 = np.repeat([0, 1, 2], 100)
    s = ParticleState.from_labels(g0, rng=9)
    with pytest.raises(NonFiniteError, match="100 particle"):
        nasgd_step(s, space, E, 0.1, 1.0)
    nasgd_step(s, space, E, 0.5, 1.0, nonfinite="freeze")
    assert np.all(s.g[:100] == 0) and s.info.nonfinite.size == 100
    assert np.all(s.g[100:] != 0)  # nobody enters the bad node
    s2 = ParticleState.from_labels(g0, rng=10)
    nasgd_step(s2, space, E, 0.5, 1.0, nonfinite="reset")
    assert np.all(s2.g != 0)
    rule = NASAGD(space, nonfinite="freeze")
    rule.step(ParticleState.from_labels(g0, rng=11), E)
    assert np.all(np.isfinite(rule.phi))


def test_nas_rules_validate_inputs():
    space = SemiDiscreteSpace.path(3)
    s = ParticleState.from_labels(np.zeros(10, dtype=int), rng=12)
    with pytest.raises(ValueError, match="shape \\(3,\\)"):
        nasgd_step(s, space, [1.0, 2.0], 0.1)
    with pytest.raises(ValueError, match="dt must be a finite number > 0"):
        nasgd_step(s, space, [1.0, 2.0, 3.0], -0.1)
    with pytest.raises(ValueError, match="restart_scope"):
        NASAGD(space, restart_scope="center")
    with pytest.raises(ValueError, match="lr \\* a_g < 2"):
        QuadraticLadder([1.0, 3.0], [0.0, 0.0], [[0.0], [0.0]], lr=1.0)
    with pytest.raises(ValueError, match="probs must have shape"):
        label_jump_step(s, space, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="out of range"):
        nasgd_step(ParticleState.from_labels(np.full(3, 5)), space, [1.0, 2.0, 3.0], 0.1)
    with pytest.raises(ValueError, match="scheme"):
        nasgd_mean_field(space, np.zeros((1, 3)), [1.0, 0.0, 0.0], 0.1, 1, scheme="rk4")
    p = nasgd_probabilities(space, [2.0, 1.0, 0.0], 0.1, 1.0)
    assert p.shape == (2, 3) and np.all(p >= 0)


def test_nasgd_on_torch_labels():
    torch = pytest.importorskip("torch")
    space = SemiDiscreteSpace.path(3)
    s = ParticleState.from_labels(torch.zeros(5000, dtype=torch.int64), rng=13)
    for _ in range(20):
        nasgd_step(s, space, [1.0, 0.5, 0.0], 0.05, 1.0)
    m = nasgd_mean_field(space, np.tile([1.0, 0.5, 0.0], (20, 1)), [1, 0, 0], 0.05, 20, 1.0, "expected")[-1]
    assert s.g.dtype == torch.int64
    assert np.all(_within(s.node_fractions(3), m, 5000))
