"""JKO steps (spec 7.3): dynamic one-step form, its limit (the grid PDE), entropic static variant."""

import warnings

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from sdot import QuadraticPotential, SemiDiscreteSpace
from sdot.energy import FreeEnergy
from sdot.grid import Grid
from sdot.jko import EntropicJKOStep, JKOStep, entropic_limit_rhs, two_point_distance

POINT = Grid(dim=0)
C3 = [0.0, 0.5, 0.2]
RHO0 = np.array([[0.7], [0.2], [0.1]])


def _three(theta="logmean_pi", T=0.5):
    space = SemiDiscreteSpace.path(3, weight=1.2)
    return JKOStep(space, QuadraticPotential(a=np.ones(3), c=C3), POINT, T, theta=theta)


def _slope(taus, errs):
    return np.polyfit(np.log(taus), np.log(errs), 1)[0]


def test_two_point_distance_closed_form():
    assert two_point_distance(0.2, 0.8) == pytest.approx(0.86780, abs=5e-6)


def test_one_step_action_approximates_the_squared_distance():
    J = JKOStep(SemiDiscreteSpace.path(2), QuadraticPotential(a=[1, 1], c=[0, 0]), POINT, 1.0, theta="logmean")
    rel = []
    for delta in (0.04, 0.02, 0.01):
        r0, r1 = 0.3, 0.3 + delta
        a = J.action(np.array([[r0], [1 - r0]]), np.array([[r1], [1 - r1]]))
        rel.append(abs(a / two_point_distance(r0, r1) ** 2 - 1))
    assert rel[-1] < 0.02 and _slope([0.04, 0.02, 0.01], rel) == pytest.approx(1, abs=0.15)


@pytest.mark.parametrize("theta", ["logmean_pi", "logmean_pi_min"])
def test_jko_converges_to_linear_pde_first_order(theta):
    J = _three(theta)
    ref = J.limit_solver().evolve(RHO0, 1.0, 1.0, method="expm")
    taus = [0.2, 0.1, 0.05, 0.025]
    errs = [np.abs(J.evolve(RHO0, 1.0, tau) - ref).max() for tau in taus]
    assert 0.8 <= _slope(taus, errs) <= 1.2, errs
    assert errs[-1] < 2e-3


def test_jko_logmean_converges_to_nonlinear_flow():
    J = _three("logmean")
    ref_solver = J.limit_solver()
    ref = solve_ivp(lambda t, y: ref_solver.rhs(y[:, None]).ravel(), (0, 1), RHO0.ravel(), rtol=1e-12,
                    atol=1e-14).y[:, -1]
    taus = [0.2, 0.1, 0.05]
    errs = [np.abs(J.evolve(RHO0, 1.0, tau).ravel() - ref).max() for tau in taus]
    assert 0.8 <= _slope(taus, errs) <= 1.2, errs


def test_jko_step_properties():
    J = _three()
    tau = 0.1
    res = J.step(RHO0, tau)
    r1 = res.rho.ravel()
    assert res.residual < 1e-10 and abs(r1.sum() - 1) < 1e-13 and r1.min() > 0
    # continuity equation rho' - rho + tau div F = 0 with the optimal flux
    div = np.bincount(J.src, weights=res.flux, minlength=3) - np.bincount(J.dst, weights=res.flux, minlength=3)
    assert np.allclose(r1 - RHO0.ravel() + tau * div, 0, atol=1e-12)
    # minimality against the feasible point rho' = rho (zero flux): F(rho') + A/(2 tau) <= F(rho)
    E = FreeEnergy(J.potential, J.T)
    assert res.objective == pytest.approx(E(res.rho, POINT) + tau * res.action / 2, rel=1e-12)
    assert res.objective < E(RHO0, POINT)
    # the Gibbs measure is a fixed point
    pi = J.limit_solver().gibbs()
    assert np.allclose(J.step(pi, 0.3).rho, pi, atol=1e-12)


def test_jko_step_on_a_d1_grid_is_close_to_implicit_euler():
    space = SemiDiscreteSpace.path(2, dim=1)
    pot = QuadraticPotential(a=[1, 2], c=[0, 0.3], m=[[0.5], [-0.5]])
    grid = Grid(-2, 2, 8, 1)
    J = JKOStep(space, pot, grid, 0.5)
    x = grid.centers[:, 0]
    rho = np.exp(-((x - 1) ** 2))[None, :] * np.array([[1.0], [0.3]])
    rho /= rho.sum() * grid.h
    ie = J.limit_solver()
    d = [np.abs(J.step(rho, tau).rho - ie.step(rho, tau)).max() for tau in (0.002, 0.001)]
    assert np.log2(d[0] / d[1]) == pytest.approx(2, abs=0.3)  # both are O(tau) schemes: differ by O(tau^2)


def test_jko_bad_input():
    space, pot = SemiDiscreteSpace.path(2), QuadraticPotential(a=[1, 1], c=[0, 1])
    with pytest.raises(ValueError, match="T > 0"):
        JKOStep(space, pot, POINT, 0.0)
    with pytest.raises(ValueError, match="unknown theta"):
        JKOStep(space, pot, POINT, 1.0, theta="harmonic")
    J = JKOStep(space, pot, POINT, 1.0)
    with pytest.raises(ValueError, match="negative"):
        J.step(np.array([[1.2], [-0.2]]), 0.1)
    with pytest.raises(ValueError, match="total mass"):
        J.step(np.array([[0.5], [0.6]]), 0.1)
    with pytest.raises(ValueError, match="tau"):
        J.step(np.array([[0.5], [0.5]]), -0.1)
    with pytest.raises(ValueError, match="negative"):
        JKOStep([[0, -1], [-1, 0]], pot, POINT, 1.0)


# ---- entropic static variant ------------------------------------------------------------------------
def test_entropic_step_matches_pot():
    space = SemiDiscreteSpace.path(2, dim=1)
    pot = QuadraticPotential(a=[1, 2], c=[0, 0.3], m=[[0.5], [-0.5]])
    grid = Grid(-2, 2, 4, 1)
    x = grid.centers[:, 0]
    rho = np.exp(-((x - 1) ** 2))[None, :] * np.array([[1.0], [0.3]])
    rho /= rho.sum() * grid.h
    ours, info = EntropicJKOStep(space, pot, grid, 0.5, eps=0.2, tol=1e-12).step(rho, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, _ = EntropicJKOStep(space, pot, grid, 0.5, eps=0.2, tol=1e-11, backend="pot").step(rho, 0.1)
    assert info["marginal_error"] < 1e-11
    assert np.abs(ours - ref).max() < 1e-9 * ref.max()


@pytest.mark.parametrize("graph_cost", ["poisson", "glauber"])
def test_entropic_steps_converge_to_their_derived_limit_law(graph_cost):
    space = SemiDiscreteSpace.path(3)
    pot = QuadraticPotential(a=np.ones(3), c=C3)
    T, beta = 0.5, 2.0
    rhs = lambda t, y: entropic_limit_rhs(y, space, np.array(C3), T, T, beta, graph_cost)
    ref = solve_ivp(rhs, (0, 1), RHO0.ravel(), rtol=1e-12, atol=1e-14).y[:, -1]
    taus = [0.1, 0.05, 0.025]
    errs = [np.abs(EntropicJKOStep(space, pot, POINT, T, eps=beta * tau, graph_cost=graph_cost)
                   .evolve(RHO0, 1.0, tau).ravel() - ref).max() for tau in taus]
    assert 0.8 <= _slope(taus, errs) <= 1.2, errs


def test_entropic_stationary_states():
    # poisson cost: rho ∝ pi^(2a / (1 + 2a)), a = 2T / beta (derived); glauber-tilted cost keeps pi
    space = SemiDiscreteSpace.path(3)
    pot = QuadraticPotential(a=np.ones(3), c=C3)
    T, beta, tau = 0.5, 2.0, 0.05  # the discrete stationary bias is O(tau)
    pi = np.exp(-np.array(C3) / T)
    alpha = 2 * T / beta
    for cost, target in (("poisson", pi ** (2 * alpha / (1 + 2 * alpha))), ("glauber", pi)):
        E = EntropicJKOStep(space, pot, POINT, T, eps=beta * tau, graph_cost=cost, tol=1e-9)
        rho = E.evolve(RHO0, 8.0, tau)
        assert np.allclose(rho.ravel(), target / target.sum(), atol=0.02)


def test_entropic_bad_input():
    space, pot = SemiDiscreteSpace.path(2), QuadraticPotential(a=[1, 1], c=[0, 1])
    with pytest.raises(ValueError, match="eps"):
        EntropicJKOStep(space, pot, POINT, 1.0, eps=0.0)
    with pytest.raises(ValueError, match="T > 0"):
        EntropicJKOStep(space, pot, POINT, -1.0, eps=0.1)
    with pytest.raises(ValueError, match="unknown graph cost"):
        EntropicJKOStep(space, pot, POINT, 1.0, eps=0.1, graph_cost="manhattan").step(np.array([[0.5], [0.5]]), 0.1)
