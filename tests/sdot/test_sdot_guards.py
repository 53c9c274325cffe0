"""Issue 15, section 3: sdot defects reproduced through the public API (each test failed before the fix)."""

import numpy as np
import pytest

import sdot
from sdot import Flow, GridSolver, QuadraticPotential, SemiDiscreteSpace
from sdot.grid import Grid
from sdot.jko import EntropicJKOStep, JKOStep
from sdot.nas_rules import nasgd_mean_field

POINT = Grid(dim=0)
RHO = np.array([[0.7], [0.2], [0.1]])


def _problem():
    space = SemiDiscreteSpace.path(3, weight=1.2)
    return space, QuadraticPotential(a=np.ones(3), c=[0.0, 0.5, 0.2])


@pytest.mark.parametrize("tau", [-0.1, 0.0, float("nan")])
def test_bad_tau_is_refused_everywhere(tau):
    space, pot = _problem()
    J = JKOStep(space, pot, POINT, 0.5)
    E = EntropicJKOStep(space, pot, POINT, 0.5, eps=0.1)
    for call in (lambda: J.evolve(RHO, 1.0, tau), lambda: E.evolve(RHO, 1.0, tau),
                 lambda: Flow(J).run(RHO, 1.0, tau), lambda: Flow(GridSolver(space, pot, POINT, 0.5)).run(RHO, 1.0, tau),
                 lambda: sdot.solve(space, pot, POINT, 0.5, RHO, 1.0, tau),
                 lambda: sdot.solve(space, pot, POINT, 0.5, RHO, 1.0, tau, method="jko")):
        with pytest.raises(ValueError, match="tau"):
            call()


@pytest.mark.parametrize("theta,law,kappa", [("logmean_pi_min", "metropolis", 1.0), ("logmean_pi", "glauber", 3.0),
                                             ("logmean_pi_min", "metropolis", 3.0)])
def test_flow_dissipation_uses_the_jko_metric(theta, law, kappa):
    # independent reference: the grid solver with the matching linear law and kappa (spec 3.4)
    space, pot = _problem()
    J = JKOStep(space, pot, POINT, 0.5, theta=theta, kappa=kappa)
    traj = Flow(J).run(RHO, 0.3, 0.1)
    ref = GridSolver(space, pot, POINT, 0.5, law=law, kappa=kappa)
    for rho, d in zip(traj.rho, traj.diagnostics):
        assert d["D"] == pytest.approx(ref.dissipation(rho), rel=1e-10)


def test_nasgd_mean_field_refuses_masses_not_summing_to_one():
    space = SemiDiscreteSpace.path(3)
    E = np.array([1.0, 0.5, 0.2])
    with pytest.raises(ValueError, match="sum"):
        nasgd_mean_field(space, np.tile(E, (5, 1)), [0.5, 0.5, 0.5], 0.01, 5)
    with pytest.raises(ValueError, match=">= 0"):
        nasgd_mean_field(space, np.tile(E, (5, 1)), [1.5, -0.5, 0.0], 0.01, 5)
    out = nasgd_mean_field(space, np.tile(E, (5, 1)), [0.2, 0.3, 0.5], 0.01, 5)
    assert np.allclose(out.sum(axis=1), 1.0)
