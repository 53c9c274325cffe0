"""DistanceGP and kernels: interpolation, PSD policies, exact gradients, ML-II recovery, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.stats import norm

from hotnas.bo.gp import DistanceGP, NotPSDError
from hotnas.bo.kernels import KERNELS, get_kernel, min_eigenvalue, project_psd


def line_distances(x: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
    z = x if z is None else z
    return np.abs(x[:, None] - z[None, :])


def non_psd_distances(n: int = 30, seed: int = 0) -> np.ndarray:
    """A symmetric, non-negative, zero-diagonal 'distance' whose Laplace Gram matrix is not PSD."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    D = np.abs(X[:, None, :] - X[None, :, :]).sum(-1)
    W = np.triu(rng.uniform(0.3, 1.7, size=(n, n)), 1)
    D = np.triu(D, 1) * W
    return D + D.T


FIXED = {"signal_variance": 1.0, "lengthscale": 1.0, "noise_variance": 1e-3}


def test_kernel_registry_and_values():
    assert {"laplace", "rbf"} <= set(KERNELS)
    D = np.array([[0.0, 2.0], [2.0, 0.0]])
    assert get_kernel("laplace")(D, 2.0)[0, 1] == pytest.approx(np.exp(-1.0))
    assert get_kernel("rbf")(D, 2.0)[0, 1] == pytest.approx(np.exp(-0.5))
    with pytest.raises(ValueError, match="unknown kernel"):
        get_kernel("matern")


@pytest.mark.parametrize("kernel", ["laplace", "rbf"])
def test_kernel_lengthscale_derivative(kernel):
    D = np.array([[0.0, 0.3, 1.7], [0.3, 0.0, 2.2], [1.7, 2.2, 0.0]])
    k, ell, h = get_kernel(kernel), 0.8, 1e-6
    fd = (k(D, ell * np.exp(h)) - k(D, ell * np.exp(-h))) / (2 * h)
    np.testing.assert_allclose(k.grad_log_lengthscale(D, ell), fd, atol=1e-8)


def test_project_psd_is_psd_and_nearest_on_a_known_case():
    # eigenvalues of [[1, 2], [2, 1]] are 3 and -1: the projection is 3 v v^T with v = (1, 1)/sqrt(2)
    K = np.array([[1.0, 2.0], [2.0, 1.0]])
    np.testing.assert_allclose(project_psd(K), 1.5 * np.ones((2, 2)), atol=1e-12)
    R = get_kernel("laplace")(non_psd_distances(), 1.0)
    assert min_eigenvalue(R) < -1e-3
    assert min_eigenvalue(project_psd(R)) > -1e-10


@pytest.mark.parametrize("kernel", ["laplace", "rbf"])
def test_posterior_mean_interpolates_training_points_with_tiny_noise(kernel):
    rng = np.random.default_rng(1)
    x = np.sort(rng.uniform(0, 10, 25))
    y = np.sin(x) + 0.1 * x
    gp = DistanceGP(kernel=kernel, psd="raise").fit(
        line_distances(x), y, hyperparameters={"signal_variance": 1.0, "lengthscale": 1.0, "noise_variance": 1e-10})
    mu, var = gp.predict(line_distances(x))
    np.testing.assert_allclose(mu, y, atol=1e-5)
    assert np.all(var < 1e-6)
    mu2, cov = gp.predict(line_distances(x), line_distances(x), full_cov=True)
    np.testing.assert_allclose(mu2, mu)
    np.testing.assert_allclose(np.diag(cov), var, atol=1e-9)


def test_far_points_revert_to_the_prior():
    x = np.linspace(0, 1, 10)
    y = 5.0 + np.cos(x)
    gp = DistanceGP(kernel="laplace").fit(line_distances(x), y, hyperparameters=FIXED)
    mu, var = gp.predict(line_distances(np.array([1e4]), x))
    assert mu[0] == pytest.approx(y.mean())
    assert var[0] == pytest.approx(gp.signal_variance)


@pytest.mark.parametrize("psd", ["clip", "jitter", "raise"])
@pytest.mark.parametrize("kernel", ["laplace", "rbf"])
def test_marginal_likelihood_gradient_is_exact(psd, kernel):
    D = non_psd_distances(25) if psd == "clip" else line_distances(np.linspace(0, 5, 25))
    y = np.random.default_rng(2).normal(size=25)
    gp = DistanceGP(kernel=kernel, psd=psd)
    z = (y - y.mean()) / y.std()
    for theta in (np.array([0.1, 0.4, -2.0]), np.array([0.5, 1.2, -1.0])):
        nll, g = gp._nll(theta, D, z, {})
        fd = approx_fprime(theta, lambda t: gp._nll(t, D, z, {})[0], 1e-6)
        np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-4)


def test_clip_policy_fits_a_non_psd_kernel_and_reports_it():
    D = non_psd_distances()
    y = np.random.default_rng(0).normal(size=len(D))
    gp = DistanceGP(kernel="laplace", psd="clip").fit(D, y, hyperparameters=FIXED)
    assert gp.min_eigenvalue_ < -1e-3
    mu, cov = gp.predict(D, D, full_cov=True)
    assert min_eigenvalue(cov) > -1e-10


def test_jitter_policy_adds_the_smallest_ladder_value():
    D = non_psd_distances()
    lam = min_eigenvalue(get_kernel("laplace")(D, 0.6))  # mildly non-PSD at this length-scale
    assert -1e-1 < lam < 0
    gp = DistanceGP(kernel="laplace", psd="jitter").fit(
        D, np.arange(len(D), dtype=float), hyperparameters={**FIXED, "lengthscale": 0.6})
    assert gp.jitter_ >= -lam > gp.jitter_ / 10
    with pytest.raises(NotPSDError, match="max_jitter"):
        DistanceGP(kernel="laplace", psd="jitter", max_jitter=1e-12).fit(
            D, np.arange(len(D), dtype=float), hyperparameters={**FIXED, "lengthscale": 0.6})


def test_raise_policy_raises_on_a_non_psd_kernel():
    D = non_psd_distances()
    with pytest.raises(NotPSDError, match="smallest eigenvalue"):
        DistanceGP(kernel="laplace", psd="raise").fit(D, np.zeros(len(D)) + np.arange(len(D)), hyperparameters=FIXED)
    # ML-II under 'raise' either finds PSD length-scales or raises; never silently repairs
    try:
        gp = DistanceGP(kernel="laplace", psd="raise", n_restarts=2).fit(D, np.arange(len(D), dtype=float))
    except NotPSDError:
        pass
    else:
        assert gp.min_eigenvalue_ >= -gp.psd_tol and gp.jitter_ == 0.0


@pytest.mark.parametrize("kernel, ell, tol", [("rbf", 1.5, 0.15), ("laplace", 2.0, 0.35)])
def test_ml2_recovers_a_known_lengthscale(kernel, ell, tol):
    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(0, 100, 200))
    D = line_distances(x)
    K = 2.0 * get_kernel(kernel)(D, ell) + 0.01 * np.eye(len(x))
    y = 3.0 + np.linalg.cholesky(K) @ rng.normal(size=len(x))
    gp = DistanceGP(kernel=kernel, n_restarts=3, seed=0).fit(D, y)
    assert gp.hyperparameters_["lengthscale"] == pytest.approx(ell, rel=tol)
    fixed = DistanceGP(kernel=kernel).fit(D, y, hyperparameters={
        "signal_variance": 2.0 / y.var(), "lengthscale": ell, "noise_variance": 0.01 / y.var()})
    assert gp.log_marginal_likelihood_ >= fixed.log_marginal_likelihood_ - 1e-6


def test_nlpd_matches_the_gaussian_density():
    x = np.linspace(0, 3, 12)
    y = np.sin(x)
    gp = DistanceGP(kernel="rbf").fit(line_distances(x), y, hyperparameters=FIXED)
    xt = np.array([0.4, 1.3, 2.9])
    yt = np.array([0.3, 1.0, 0.1])
    mu, var = gp.predict(line_distances(xt, x))
    expected = -norm.logpdf(yt, mu, np.sqrt(var + gp.noise_variance)).mean()
    assert gp.nlpd(line_distances(xt, x), yt) == pytest.approx(expected)


def test_with_data_matches_a_fit_with_the_same_scaling():
    x = np.linspace(0, 3, 10)
    gp = DistanceGP(kernel="laplace").fit(line_distances(x[:8]), np.sin(x[:8]), hyperparameters=FIXED)
    y_new = np.append(np.sin(x[:8]), [0.2, -0.1])
    kb = gp.with_data(line_distances(x), y_new)
    assert kb.hyperparameters_ == gp.hyperparameters_ and kb.y_mean_ == gp.y_mean_
    mu, _ = kb.predict(line_distances(x), )
    np.testing.assert_allclose(mu, y_new, atol=0.05)


def test_bad_inputs_raise_clear_errors():
    x = np.linspace(0, 1, 5)
    D = line_distances(x)
    with pytest.raises(ValueError, match="PSD policy"):
        DistanceGP(psd="ignore")
    with pytest.raises(ValueError, match="expected 5"):
        DistanceGP().fit(D[:4], np.zeros(5))
    bad = D.copy()
    bad[0, 1] += 1.0
    with pytest.raises(ValueError, match="not symmetric"):
        DistanceGP().fit(bad, np.zeros(5))
    with pytest.raises(ValueError, match="non-finite"):
        DistanceGP().fit(D, np.array([0, 1, np.nan, 0, 1]))
    with pytest.raises(RuntimeError, match="not fitted"):
        DistanceGP().predict(D)
    gp = DistanceGP().fit(D, x, hyperparameters=FIXED)
    with pytest.raises(ValueError, match="columns"):
        gp.predict(D[:, :3])
    with pytest.raises(ValueError, match="D_test"):
        gp.predict(D, full_cov=True)


def test_cap_policy_keeps_ml2_to_psd_lengthscales():
    D = non_psd_distances()
    y = np.random.default_rng(3).normal(size=len(D))
    gp = DistanceGP(kernel="laplace", psd="cap", n_restarts=2, seed=0).fit(D, y)
    cap = gp.lengthscale_cap_
    assert np.linalg.eigvalsh(np.exp(-D / cap))[0] >= -gp.psd_tol  # the cap is PSD ...
    assert np.linalg.eigvalsh(np.exp(-D / (1.2 * cap)))[0] < 0  # ... and close to the boundary
    assert gp.hyperparameters_["lengthscale"] <= gp.cap_margin * cap * (1 + 1e-9)
    assert gp.min_eigenvalue_ >= -gp.psd_tol and gp.jitter_ == 0.0
    # a conditionally negative definite distance (|x - x'|) is PSD at every l: no cap, no margin
    x = np.linspace(0, 5, 20)
    gp2 = DistanceGP(kernel="laplace", psd="cap", seed=0).fit(np.abs(x[:, None] - x[None, :]), np.sin(x))
    med = np.median(np.abs(x[:, None] - x[None, :])[np.triu_indices(20, 1)])
    assert gp2.lengthscale_cap_ == pytest.approx(100 * med)
    with pytest.raises(ValueError, match="cap_margin"):
        DistanceGP(psd="cap", cap_margin=1.5)


def test_negative_variance_from_an_indefinite_joint_gram_falls_back_to_the_one_point_posterior():
    """Two training points 2 apart and a test point 0.1 from both (triangle inequality broken):
    the joint Laplace Gram is indefinite and s - k^T K^-1 k = 1 - 2 r^2 / (1 + e^-2) < 0 with
    r = e^-0.1. The variance reported is the one-point posterior s - r^2 s^2 / (s + noise), not 0."""
    from hotnas.bo.gp import DistanceGP

    D = np.array([[0.0, 2.0], [2.0, 0.0]])
    hyp = {"signal_variance": 1.0, "lengthscale": 1.0, "noise_variance": 1e-6}
    gp = DistanceGP(kernel="laplace", psd="cap").fit(D, np.array([0.0, 1.0]), hyperparameters=hyp)
    r = np.exp(-0.1)
    assert 1 - 2 * r**2 / (1 + np.exp(-2.0) + 1e-6) < 0          # the naive variance is negative
    _, var = gp.predict(np.array([[0.1, 0.1], [5.0, 5.0]]))
    expected = gp.y_std_**2 * (1 - r**2 / (1 + 1e-6))
    assert var[0] == pytest.approx(expected, rel=1e-9)
    far = 1 - 2 * np.exp(-10.0) / (1 + np.exp(-2.0) + 1e-6)   # a consistent point keeps its exact variance
    assert var[1] == pytest.approx(gp.y_std_**2 * far, rel=1e-12)
