"""sdot.jump: the one propose/accept primitive and its one overflow policy, against closed forms."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from sdot.jump import (GAP_CAP, acceptance, cap_potential, caps_gaps, clip_gap, mh_log_acceptance,
                       propose_accept)
from sdot.rates import RATE_LAWS, RateLaw, get_rate_law


def test_rate_form_acceptance_by_hand():
    f0, f1, T, deg, dt = 1.0, 0.4, 0.5, 3.0, 0.2
    gap = f0 - f1
    p = {law: float(acceptance(f0, f1, T, law, degree=deg, dt=dt)) for law in ("glauber", "metropolis", "upwind")}
    assert p["glauber"] == pytest.approx(1 - math.exp(-dt * deg * T * math.exp(gap / (2 * T))), rel=1e-14)
    assert p["metropolis"] == pytest.approx(1 - math.exp(-dt * deg * T), rel=1e-14)
    assert p["upwind"] == pytest.approx(1 - math.exp(-dt * deg * gap), rel=1e-14)
    # uphill: metropolis pays exp(-gap/T), upwind never moves
    up = float(acceptance(f1, f0, T, "metropolis", degree=deg, dt=dt))
    assert up == pytest.approx(1 - math.exp(-dt * deg * T * math.exp(-gap / T)), rel=1e-14)
    assert float(acceptance(f1, f0, T, "upwind", degree=deg, dt=dt)) == 0.0
    assert float(acceptance(f1, f0, 0.0, "upwind", degree=deg, dt=dt)) == 0.0   # T = 0 with a law that needs none


def test_rate_form_is_the_rate_law_to_first_order_in_dt():
    # P(g -> g') = q p -> dt k(g -> g') = dt w r as dt -> 0, whatever the degree
    w, deg, f0, f1, T = 0.7, 2.5, 0.3, 0.9, 0.4
    for law in ("glauber", "metropolis", "upwind"):
        k = float(get_rate_law(law).rate(f0, f1, w, T))
        for dt in (1e-4, 1e-6):
            P = (w / deg) * float(acceptance(f0, f1, T, law, degree=deg, dt=dt))
            assert P / dt == pytest.approx(k, rel=10 * dt * deg * max(k / w, 1e-3) + 1e-9)


def _mh_matrix(f, W, T, law):
    """Transition matrix of the propose (w / deg) then accept (MH form) chain on a weighted graph."""
    deg = W.sum(1)
    n = len(f)
    P = np.zeros((n, n))
    for g in range(n):
        for h in range(n):
            if W[g, h] > 0:
                A = math.exp(float(mh_log_acceptance(f[g], f[h], T, law, degree=deg[g], degree_to=deg[h])))
                P[g, h] = W[g, h] / deg[g] * A
        P[g, g] = 1 - P[g].sum()
    return P


@pytest.mark.parametrize("law", ["metropolis", "glauber"])
def test_mh_form_detailed_balance_on_a_3_node_graph_gives_the_gibbs_measure(law):
    # a weighted path 0 - 1 - 2 plus a weak chord 0 - 2: degrees differ, so the deg ratio matters
    W = np.array([[0.0, 2.0, 0.3], [2.0, 0.0, 0.5], [0.3, 0.5, 0.0]])
    f, T = np.array([0.2, -0.4, 0.7]), 0.35
    P = _mh_matrix(f, W, T, law)
    pi = np.exp(-f / T) / np.exp(-f / T).sum()
    flux = pi[:, None] * P
    assert np.allclose(flux, flux.T, atol=1e-15)                 # detailed balance, exactly
    assert np.allclose(pi @ P, pi, atol=1e-15)                   # hence pi_T invariant
    evals, evecs = np.linalg.eig(P.T)                             # and the unique invariant law
    v = np.real(evecs[:, np.argmin(np.abs(evals - 1))])
    assert np.allclose(v / v.sum(), pi, atol=1e-12)


def test_mh_form_by_hand_and_sampled_chain_visits_the_gibbs_measure():
    # acceptance by hand: min(1, x) and x / (1 + x), x = exp(-(f' - f)/T) deg(g)/deg(g')
    x = math.exp(-(0.5 - 0.1) / 0.2) * 2.0 / 3.0
    assert math.exp(float(mh_log_acceptance(0.1, 0.5, 0.2, "metropolis", degree=2.0, degree_to=3.0))) == \
        pytest.approx(min(1.0, x), rel=1e-14)
    assert math.exp(float(mh_log_acceptance(0.1, 0.5, 0.2, "glauber", degree=2.0, degree_to=3.0))) == \
        pytest.approx(x / (1 + x), rel=1e-14)
    # a simulated chain (10^4 walkers x 60 steps) through propose_accept lands on pi_T
    W = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 3.0], [1.0, 3.0, 0.0]])
    deg, f, T = W.sum(1), np.array([0.0, 0.3, -0.2]), 0.5
    rng = np.random.default_rng(0)
    g = np.zeros(10_000, dtype=int)
    for _ in range(60):
        h = np.array([rng.choice(3, p=W[i] / deg[i]) for i in g])
        acc = propose_accept(f[g], f[h], T, "metropolis", rng, degree=deg[g], degree_to=deg[h]).accepted
        g = np.where(acc, h, g)
    pi = np.exp(-f / T) / np.exp(-f / T).sum()
    assert np.allclose(np.bincount(g, minlength=3) / g.size, pi, atol=0.02)


def test_one_overflow_policy():
    assert caps_gaps("glauber") and not caps_gaps("metropolis") and not caps_gaps("upwind")
    T = 0.01
    # pair form = table form for two values
    for a, b in ((0.0, 50.0), (50.0, 0.0), (1.0, 1.004)):
        fa, fb = cap_potential([a, b], T, "glauber")
        assert float(clip_gap(a - b, T, "glauber")) == pytest.approx(fa - fb, abs=1e-12)
    assert np.array_equal(cap_potential([0.0, 50.0], T, "metropolis"), [0.0, 50.0])
    assert float(clip_gap(50.0, T, "upwind")) == 50.0
    assert np.max(cap_potential([0.0, 3.0, 50.0, 9.0], T, "glauber")) == pytest.approx(GAP_CAP * T)
    # huge gaps: no overflow warning, downhill certain, uphill impossible; metropolis unchanged by the policy
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = acceptance(np.array([1e6, -1e6, 0.0]), 0.0, T, "glauber", degree=2.0, dt=1.0)
        assert p[0] == 1.0 and 0.0 <= p[1] < 1e-200 and 0 < p[2] < 1
        assert float(acceptance(1e6, 0.0, T, "upwind", degree=2.0, dt=1.0)) == 1.0


def test_nonfinite_proposals_are_rejected_and_draws_stay_in_step():
    rng, ref = np.random.default_rng(5), np.random.default_rng(5)
    res = propose_accept(np.array([0.0, np.nan, 0.0]), np.array([np.inf, -1.0, -1.0]), 1.0, "glauber", rng,
                         degree=np.ones(3), dt=10.0)
    assert res.p.tolist()[:2] == [0.0, 0.0] and res.accepted.tolist() == [False, False, True]
    ref.random(3)
    assert rng.random() == ref.random()                          # one uniform per proposal, in order
    # a scalar proposal draws rng.random() exactly once
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    propose_accept(0.0, 1.0, 1.0, "metropolis", a, degree=2.0, dt=0.1)
    b.random()
    assert a.random() == b.random()


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match="no Metropolis-Hastings acceptance"):
        mh_log_acceptance(0.0, 1.0, 1.0, "upwind", degree=1.0, degree_to=1.0)
    with pytest.raises(ValueError, match="needs degree_to"):
        propose_accept(0.0, 1.0, 1.0, "metropolis", np.random.default_rng(0), degree=1.0)
    with pytest.raises(ValueError, match="no jump rate"):
        acceptance(0.0, 1.0, 1.0, "logmean", degree=1.0, dt=1.0)
    with pytest.raises(ValueError, match="degree"):
        acceptance(0.0, 1.0, 1.0, "glauber", degree=0.0, dt=1.0)
    with pytest.raises(ValueError, match="T > 0"):
        acceptance(0.0, 1.0, 0.0, "glauber", degree=1.0, dt=1.0)


def test_every_registered_linear_law_gets_the_policy_automatically():
    # a new law is one registration away: the overflow check is a property of its rate, not a name list
    def _fast(fg, fh, w, T):
        return T * w * np.exp((fg - fh) / T)

    law = RateLaw("fast-test", linear=True, gibbs_reversible=False, needs_temperature=True, _rate=_fast)
    assert caps_gaps(law)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(acceptance(5.0, 0.0, 1e-3, law, degree=1.0, dt=1.0)) == 1.0
    for name in RATE_LAWS:
        if RATE_LAWS.load(name).linear:
            p = acceptance(np.array([0.0, 1.0]), np.array([1.0, 0.0]), 0.5, name, degree=2.0, dt=0.1)
            assert np.all((p >= 0) & (p <= 1))
