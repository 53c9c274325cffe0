"""The shared contracts of sdot: graph validation, rate laws, analytic potentials."""

import numpy as np
import pytest
import scipy.sparse as sp

from sdot import QuadraticPotential, SemiDiscreteSpace, get_rate_law, logmean
from sdot.potentials import CallablePotential, DoubleWellPotential


@pytest.mark.parametrize(
    "W, match",
    [
        ([[0, -1], [-1, 0]], "negative"),
        ([[0, 1], [2, 0]], "symmetric"),
        ([[0, np.nan], [np.nan, 0]], "not finite"),
        ([[1, 1], [1, 0]], "diagonal"),
        ([[0, 1, 0], [1, 0, 0]], "square"),
    ],
)
def test_bad_graph_weights_are_named(W, match):
    with pytest.raises(ValueError, match=match):
        SemiDiscreteSpace(W)


def test_disconnected_graph_is_reported():
    W = sp.block_diag([np.array([[0, 1], [1, 0]]), np.array([[0, 1], [1, 0]])])
    S = SemiDiscreteSpace(W)
    assert not S.is_connected()
    with pytest.raises(ValueError, match="2 connected components"):
        S.require_connected()


def test_constructors_degrees():
    assert np.allclose(SemiDiscreteSpace.cycle(6).degree, 2)
    assert np.allclose(SemiDiscreteSpace.complete(5, weight=0.5).degree, 2.0)
    assert np.allclose(SemiDiscreteSpace.path(4).degree, [1, 2, 2, 1])
    R = SemiDiscreteSpace.random_regular(50, 4, seed=1)
    assert np.allclose(R.degree, 4) and R.is_connected()


def test_logmean_identity_and_series():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 3, 1000), rng.uniform(0.1, 3, 1000)
    # Lambda(a, b) (log b - log a) = b - a
    assert np.allclose(logmean(a, b) * (np.log(b) - np.log(a)), b - a, rtol=1e-12, atol=1e-14)
    e = np.logspace(-12, -3.5, 20)
    exact = e / np.log1p(e)  # Lambda(1, 1+e)
    assert np.allclose(logmean(np.ones_like(e), 1 + e), exact, rtol=1e-13)
    assert logmean(np.array(2.0), np.array(0.0)) == 0.0


@pytest.mark.parametrize("name", ["glauber", "metropolis"])
def test_detailed_balance_of_reversible_laws(name):
    law = get_rate_law(name)
    rng = np.random.default_rng(1)
    fg, fh, T = rng.normal(size=100), rng.normal(size=100), 0.7
    # pi_g k(g->h) = pi_h k(h->g) with pi = exp(-f/T)
    lhs = np.exp(-fg / T) * law.rate(fg, fh, 1.3, T)
    rhs = np.exp(-fh / T) * law.rate(fh, fg, 1.3, T)
    assert law.gibbs_reversible
    assert np.allclose(lhs, rhs, rtol=1e-12)


def test_upwind_is_downhill_only_and_kappa_scales():
    law = get_rate_law("upwind", kappa=2.0)
    assert law.rate(3.0, 1.0, 1.0) == pytest.approx(1.0)
    assert law.rate(1.0, 3.0, 1.0) == 0.0


def test_rate_law_errors():
    with pytest.raises(ValueError, match="unknown rate law 'foo'"):
        get_rate_law("foo")
    with pytest.raises(ValueError, match="T > 0"):
        get_rate_law("metropolis").rate(0.0, 1.0, 1.0, -1.0)
    with pytest.raises(TypeError, match="nonlinear"):
        get_rate_law("logmean").rate(0.0, 1.0, 1.0, 1.0)


def test_quadratic_potential_matches_formula_numpy_and_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    a, c, m = rng.uniform(1, 2, 4), rng.normal(size=4), rng.normal(size=(4, 3))
    f = QuadraticPotential(a, c, m)
    x, g = rng.normal(size=(10, 3)), rng.integers(0, 4, 10)
    expect = a[g] * ((x - m[g]) ** 2).sum(1) / 2 + c[g]
    assert np.allclose(f(x, g), expect)
    assert np.allclose(f.all_nodes(x)[np.arange(10), g], expect)
    assert np.allclose(f.grad(x, g), a[g][:, None] * (x - m[g]))
    assert np.allclose(f(torch.tensor(x), torch.tensor(g)).numpy(), expect)


def test_gradients_against_finite_differences():
    rng = np.random.default_rng(3)
    dw = DoubleWellPotential([1.0, 2.0], [1.0, 0.5], [0.1, -0.2], [0.0, 0.3], dim=2)
    x, g = rng.normal(size=(5, 2)), np.array([0, 1, 0, 1, 1])
    eps = 1e-6
    fd = np.stack([(dw(x + eps * e, g) - dw(x - eps * e, g)) / (2 * eps) for e in np.eye(2)], 1)
    assert np.allclose(dw.grad(x, g), fd, atol=1e-7)
    cp = CallablePotential(lambda x, g: (x**4).sum(1) + g, 3, 2)  # autograd path
    assert np.allclose(cp.grad(x, g), 4 * x**3)


def test_proposal_acceptance_gives_the_law_rate_on_weighted_graphs():
    """Proposing h with q = w/deg and accepting with p gives P(g -> h) = dt w r + O(dt^2),
    whatever the weights (a weight-dependent acceptance would miss this by a factor w)."""
    from sdot.rates import glauber, proposal_acceptance

    rng = np.random.default_rng(3)
    w = rng.uniform(0.05, 2.0, 7)
    deg = w.sum()
    gap = rng.normal(size=7)
    r = glauber.rate(gap, np.zeros(7), 1.0, 0.4)          # unit-weight rates
    for dt in (1e-3, 1e-5):
        P = (w / deg) * proposal_acceptance(r, deg, dt)
        np.testing.assert_allclose(P, dt * w * r, rtol=dt * deg * r.max())
    assert proposal_acceptance(np.inf, 2.0, 0.1) == 1.0
    assert proposal_acceptance(np.nan, 2.0, 0.1) == 0.0
    with pytest.raises(ValueError, match="degree"):
        proposal_acceptance(1.0, 0.0, 0.1)
    with pytest.raises(ValueError, match="dt"):
        proposal_acceptance(1.0, 1.0, -1.0)


def test_logmean_is_accurate_just_above_its_series_threshold():
    """Lambda(1, 1 + e) against its Taylor series (error < e^5 / 50 < 1e-16 here) for e just above the
    switch to the quotient form, where log(hi) - log(lo) used to cancel to ~1e-12."""
    from sdot.rates import logmean

    e = np.linspace(1.0001e-3, 3e-3, 50)
    series = 1 + e / 2 - e**2 / 12 + e**3 / 24 - 19 * e**4 / 720 + 3 * e**5 / 160
    a = 0.37
    np.testing.assert_allclose(logmean(np.full_like(e, a), a * (1 + e)), a * series, rtol=3e-15, atol=0)
