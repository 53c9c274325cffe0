"""Acquisitions: exact knowledge gradient (closed forms, Monte Carlo, reference algorithm), EI, LCB."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import norm

from hotnas.bo import (ACQUISITIONS, ConfidenceBound, ExpectedImprovement, KnowledgeGradient, Posterior,
                       get_acquisition, kg_envelope, kg_envelope_batch)


def random_posterior(m: int, seed: int, noise: float = 0.05) -> Posterior:
    rng = np.random.default_rng(seed)
    L = rng.normal(size=(m, m)) / np.sqrt(m)
    cov = L @ L.T + 0.01 * np.eye(m)
    return Posterior(mean=rng.normal(size=m), var=np.diag(cov), cov=cov, noise_variance=noise, best=1.0)


def kg_monte_carlo(post: Posterior, x: int, n: int, seed: int) -> tuple[float, float]:
    """KG(x) by sampling Z: mean and standard error."""
    st = post.cov[x] / np.sqrt(post.var[x] + post.noise_variance)
    Z = np.random.default_rng(seed).normal(size=n)
    vals = np.max(post.mean[None, :] + st[None, :] * Z[:, None], axis=1) - post.mean.max()
    return float(vals.mean()), float(vals.std(ddof=1) / np.sqrt(n))


def test_registry():
    assert {"kg", "ei", "lcb"} <= set(ACQUISITIONS)
    assert isinstance(get_acquisition("kg"), KnowledgeGradient)
    assert get_acquisition("lcb", beta=3.0).beta == 3.0
    with pytest.raises(ValueError, match="unknown acquisition"):
        get_acquisition("pi")


def test_kg_single_candidate_is_zero():
    post = Posterior(mean=[1.3], var=[0.7], cov=[[0.7]], noise_variance=0.1)
    assert KnowledgeGradient()(post) == pytest.approx([0.0])


@pytest.mark.parametrize("s", [0.1, 1.0, 3.0])
def test_kg_two_independent_points_equal_means(s):
    # A = {a, x}, independent, equal means: slopes st = (0, s) -> KG = s phi(0) = s / sqrt(2 pi)
    post = Posterior(mean=[0.4, 0.4], var=[1.0, s**2], cov=np.diag([1.0, s**2]), noise_variance=0.0)
    assert KnowledgeGradient()(post, [1])[0] == pytest.approx(s / np.sqrt(2 * np.pi), rel=1e-12)
    assert kg_envelope(np.array([0.4, 0.4]), np.array([0.0, s])) == pytest.approx(s / np.sqrt(2 * np.pi))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kg_exact_matches_monte_carlo(seed):
    post = random_posterior(40, seed)
    exact = KnowledgeGradient()(post, np.arange(6))
    for x in range(6):
        mc, se = kg_monte_carlo(post, x, 200_000, seed=10 + x)
        assert abs(exact[x] - mc) <= 4 * se + 1e-12, (x, exact[x], mc, se)


def test_vectorised_envelope_equals_the_sort_and_stack_algorithm_with_ties():
    rng = np.random.default_rng(5)
    for _ in range(20):
        m = int(rng.integers(2, 60))
        a = np.round(rng.normal(size=m), 1)           # ties in intercepts
        B = np.round(rng.normal(size=(8, m)), 1)       # ties in slopes, crossings at shared points
        B[0] = 0.0                                      # all slopes equal: KG = 0
        np.testing.assert_allclose(kg_envelope_batch(a, B), [kg_envelope(a, b) for b in B], atol=1e-12)
        assert kg_envelope_batch(a, B)[0] == 0.0


def test_kg_invariances_shift_and_scale():
    post = random_posterior(25, 3)
    kg = KnowledgeGradient()(post)
    assert np.all(kg >= 0)
    shifted = Posterior(post.mean + 7.0, post.var, post.cov, post.noise_variance)
    np.testing.assert_allclose(KnowledgeGradient()(shifted), kg, atol=1e-12)
    c = 2.5
    scaled = Posterior(c * post.mean, c**2 * post.var, c**2 * post.cov, c**2 * post.noise_variance)
    np.testing.assert_allclose(KnowledgeGradient()(scaled), c * kg, rtol=1e-10)
    perm = np.random.default_rng(0).permutation(25)
    permuted = Posterior(post.mean[perm], post.var[perm], post.cov[np.ix_(perm, perm)], post.noise_variance)
    np.testing.assert_allclose(KnowledgeGradient()(permuted), kg[perm], atol=1e-12)


def test_kg_needs_the_covariance():
    with pytest.raises(ValueError, match="covariance"):
        KnowledgeGradient()(Posterior(mean=[0.0, 1.0], var=[1.0, 1.0]))


@pytest.mark.parametrize("mu, s, best, xi", [(0.0, 1.0, 0.5, 0.0), (2.0, 0.3, 1.0, 0.1), (-1.0, 2.0, 1.5, 0.0)])
def test_ei_matches_numerical_integration(mu, s, best, xi):
    direct, _ = quad(lambda y: max(y - best - xi, 0.0) * norm.pdf(y, mu, s), best + xi, mu + 12 * s + 12)
    post = Posterior(mean=[mu], var=[s**2], best=best)
    assert ExpectedImprovement(xi=xi)(post)[0] == pytest.approx(direct, rel=1e-7, abs=1e-12)


def test_ei_without_uncertainty_is_the_plain_improvement():
    post = Posterior(mean=[2.0, 0.5], var=[0.0, 0.0], best=1.0)
    np.testing.assert_allclose(ExpectedImprovement()(post), [1.0, 0.0])
    with pytest.raises(ValueError, match="incumbent"):
        ExpectedImprovement()(Posterior(mean=[0.0], var=[1.0]))


def test_confidence_bound():
    post = Posterior(mean=[1.0, 2.0], var=[4.0, 0.25], best=0.0)
    np.testing.assert_allclose(ConfidenceBound(beta=2.0)(post), [5.0, 3.0])
    assert ConfidenceBound().beta == pytest.approx(2 * np.log(100))
    with pytest.raises(IndexError):
        ConfidenceBound()(post, [2])
