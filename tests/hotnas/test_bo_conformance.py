"""Conformance of the BO pieces: every registered kernel, acquisition and output transform meets its contract.

The parameter lists are read from the live registries (``hotnas.bo.KERNELS``, ``hotnas.bo.ACQUISITIONS``,
``hotnas.bo.TRANSFORMS``), so a new component is tested here as soon as it is registered.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from hotnas.bo import (ACQUISITIONS, KERNELS, TRANSFORMS, CandidateGenerator, CandidatePool, Posterior,
                       get_acquisition, get_kernel, kriging_believer)


def _euclidean(n: int = 25, d: int = 3, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d))
    return np.linalg.norm(x[:, None, :] - x[None, :, :], axis=-1)


# ---------------------------------------------------------------------- kernels
@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("lengthscale", [0.3, 1.0, 4.0])
def test_kernel_is_a_stationary_correlation(name, lengthscale):
    """r(D; l) on Euclidean distances: symmetric, unit diagonal, values in [0, 1], PSD, non-increasing in D."""
    k = get_kernel(name)
    assert k.name == name
    D = _euclidean()
    R = k(D, lengthscale)
    assert R.shape == D.shape
    np.testing.assert_allclose(R, R.T, atol=1e-14)
    np.testing.assert_allclose(np.diag(R), 1.0, atol=1e-14)
    assert np.all((R >= 0) & (R <= 1 + 1e-14))
    assert np.linalg.eigvalsh(R)[0] >= -1e-10
    r = k(np.linspace(0.0, 10.0, 50), lengthscale)
    assert np.all(np.diff(r) <= 1e-15)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_log_lengthscale_derivative(name):
    """grad_log_lengthscale equals the finite difference of r in log l (with and without R given)."""
    k = get_kernel(name)
    D = _euclidean(6)[0]
    for ell in (0.5, 2.0):
        g = k.grad_log_lengthscale(D, ell)
        np.testing.assert_allclose(g, k.grad_log_lengthscale(D, ell, k(D, ell)), rtol=1e-12)
        for i in range(len(D)):
            fd = approx_fprime(np.array([np.log(ell)]), lambda t: k(D[i], np.exp(t[0])), 1e-7)[0]
            assert g[i] == pytest.approx(fd, abs=1e-6)


# ---------------------------------------------------------------------- acquisitions
def _posterior(m: int = 12, seed: int = 0, shift: float = 0.0, scale: float = 1.0) -> Posterior:
    rng = np.random.default_rng(seed)
    L = rng.normal(size=(m, m)) / np.sqrt(m)
    cov = L @ L.T + 0.01 * np.eye(m)
    mean = rng.normal(size=m)
    return Posterior(mean=shift + scale * mean, var=scale**2 * np.diag(cov), cov=scale**2 * cov,
                     noise_variance=scale**2 * 0.05, best=shift + scale * 0.5)


@pytest.mark.parametrize("name", sorted(ACQUISITIONS))
def test_acquisition_contract(name):
    """Finite scores, one per candidate; a subset of candidates scores as in the whole set; deterministic."""
    acq = get_acquisition(name)
    assert acq.name == name
    post = _posterior()
    full = acq(post)
    assert full.shape == (12,) and np.all(np.isfinite(full))
    sub = np.array([7, 2, 5])
    np.testing.assert_allclose(acq(post, sub), full[sub], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(acq(post), full)
    with pytest.raises(IndexError):
        acq(post, [12])


@pytest.mark.parametrize("name", sorted(ACQUISITIONS))
def test_acquisition_ranks_are_invariant_to_the_units_of_the_objective(name):
    """y -> a y + c (a > 0) on mean, incumbent, variances and noise does not change which candidate wins."""
    acq = get_acquisition(name)
    base = acq(_posterior(seed=3))
    moved = acq(_posterior(seed=3, shift=7.0, scale=2.5))
    assert int(np.argmax(moved)) == int(np.argmax(base))
    np.testing.assert_array_equal(np.argsort(moved, kind="stable"), np.argsort(base, kind="stable"))


#: closed forms with no posterior uncertainty (var = cov = 0): what the acquisition must return.
ZERO_VARIANCE = {
    "ei": lambda mu, best: np.maximum(0.0, mu - best),  # the plain improvement
    "lcb": lambda mu, best: mu,  # mu + beta * 0
    "kg": lambda mu, best: np.zeros_like(mu),  # a noiseless-known value teaches nothing
}


@pytest.mark.parametrize("name", sorted(ACQUISITIONS))
def test_acquisition_without_uncertainty(name):
    """With var = cov = 0 the score is a closed form of the means (table ZERO_VARIANCE); an acquisition
    without an entry must at least rank by the mean, as every myopic acquisition does with no uncertainty."""
    mu = np.array([0.1, 0.9, -0.4, 0.6, 0.2])
    best = 0.5
    post = Posterior(mean=mu, var=np.zeros(5), cov=np.zeros((5, 5)), noise_variance=0.01, best=best)
    scores = get_acquisition(name)(post)
    if name in ZERO_VARIANCE:
        np.testing.assert_allclose(scores, ZERO_VARIANCE[name](mu, best), atol=1e-12)
    else:
        assert int(np.argmax(scores)) == int(np.argmax(mu))


# ---------------------------------------------------------------------- output transforms
@pytest.mark.parametrize("name", sorted(TRANSFORMS, key=str))
def test_transform_is_monotone_and_finite(name):
    """An output transform keeps the order of the values (ties stay ties) and returns finite values."""
    y = np.array([0.9, 0.1, 0.5, 0.5, 0.95, -3.0, 0.2])
    z = np.asarray(TRANSFORMS[name](y), dtype=float)
    assert z.shape == y.shape and np.all(np.isfinite(z))
    i, j = np.triu_indices(len(y), 1)
    assert np.all(np.sign(z[i] - z[j]) == np.sign(y[i] - y[j]))


# ---------------------------------------------------------------------- candidates and batches
def test_candidate_pool_is_a_candidate_generator():
    from hotnas.spaces import get_space

    space = get_space("nb201")
    pool = CandidatePool(space, size=30, top_k=3, n_random=5)
    assert isinstance(pool, CandidateGenerator)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(8)]
    out = pool(archs, list(range(8)), rng, exclude=archs[:1])
    assert len(out) == len(set(out)) <= 30 and not set(out) & set(archs)


def test_kriging_believer_picks_distinct_candidates_and_conditions_between_picks():
    conditioned = []

    def select(model, cand, train, train_y):
        return int(np.argmax([len(a) for a in cand])), -1.0  # the longest name wins

    def condition(train, train_y):
        conditioned.append((list(train), list(train_y)))
        return len(conditioned)

    picks = kriging_believer(0, ["a", "ccc", "bb", "dddd"], ["x"], [1.0], 3, select, condition)
    assert picks == ["dddd", "ccc", "bb"]
    assert conditioned == [(["x", "dddd"], [1.0, -1.0]), (["x", "dddd", "ccc"], [1.0, -1.0, -1.0])]
    assert kriging_believer(0, ["a", "b"], [], [], 5, lambda *a: (0, 0.0), lambda *a: 0) == ["a", "b"]


# ---------------------------------------------------------------------- the house: old paths and layering
def test_old_module_paths_are_the_new_objects():
    import hotnas.acquisition
    import hotnas.bo
    import hotnas.candidates
    import hotnas.gp
    import hotnas.kernels
    import hotnas.optimisers.bo
    from hotnas.distances.cache import DistanceCache

    assert hotnas.gp.DistanceGP is hotnas.bo.DistanceGP
    assert hotnas.kernels.KERNELS is hotnas.bo.KERNELS
    assert hotnas.acquisition.Posterior is hotnas.bo.Posterior
    assert hotnas.acquisition.KnowledgeGradient is hotnas.bo.KnowledgeGradient
    assert hotnas.candidates.CandidatePool is hotnas.bo.CandidatePool
    assert hotnas.optimisers.bo.DistanceCache is DistanceCache
    assert hotnas.optimisers.bo.TRANSFORMS is hotnas.bo.TRANSFORMS
    assert hotnas.optimisers.bo.HotnasBO is hotnas.bo.HotnasBO
    from hotnas.optimisers import OPTIMISERS

    assert OPTIMISERS.load("hotnas") is hotnas.bo.HotnasBO


def test_hotnas_bo_imports_alone_and_below_the_optimisers():
    """hotnas.bo is a library floor under the optimisers: importing it (first, in a fresh process) loads
    no optimiser, so it can never join an import cycle with them."""
    code = ("import sys, hotnas.bo.gp, hotnas.bo.knowledge_gradient, hotnas.distances.cache; "
            "bad = [m for m in sys.modules if m.startswith('hotnas.optimisers')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("first", ["hotnas.bo.optimiser", "hotnas.optimisers.bo", "hotnas.optimisers"])
def test_the_optimiser_imports_first_without_a_cycle(first):
    """Whichever module a fresh process imports first, HOTNAS is registered and loads (no partial module)."""
    code = (f"import {first}; from hotnas.optimisers import OPTIMISERS; from hotnas.bo import HotnasBO; "
            "assert OPTIMISERS.load('hotnas') is HotnasBO")
    subprocess.run([sys.executable, "-c", code], check=True)
