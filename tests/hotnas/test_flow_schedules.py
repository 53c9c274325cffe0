"""Temperature schedules and the Flow driver / solve front door."""

import math

import numpy as np
import pytest

from sdot import QuadraticPotential, SemiDiscreteSpace
from sdot.flow import Flow, solve
from sdot.grid import Grid, GridSolver
from sdot.schedules import get_schedule


def test_schedules_values_and_validation():
    assert get_schedule("constant", T0=0.4)(10.0, 7) == 0.4
    geo = get_schedule("geometric", T0=1.0, q=0.9, T_min=0.5)
    assert geo(0, 3) == pytest.approx(0.729) and geo(0, 100) == 0.5
    assert get_schedule("logarithmic", c=2.0)(1.0) == pytest.approx(2 / math.log(math.e + 1))
    assert get_schedule(lambda t: 1 / (1 + t))(1.0) == 0.5
    with pytest.raises(ValueError, match="0 < q <= 1"):
        get_schedule("geometric", T0=1.0, q=1.5)
    with pytest.raises(ValueError, match="unknown schedule 'cosine'"):
        get_schedule("cosine")
    with pytest.raises(ValueError, match="finite and >= 0"):
        get_schedule(lambda t: -1.0)(0.0)
    with pytest.raises(ValueError, match="c > 0"):
        get_schedule("logarithmic", c=0)


def test_flow_records_diagnostics_and_energy_decreases():
    space = SemiDiscreteSpace.complete(3, dim=1)
    pot = QuadraticPotential(a=[1, 2, 0.5], c=[0, 0.2, 0.1], m=[[0.5], [-0.5], [0.0]])
    grid = Grid(-4, 4, 40, 1)
    rho0 = np.ones((3, 40)) / (3 * 8.0)
    traj = solve(space, pot, grid, 0.5, rho0, t_final=2.0, tau=0.1, record_every=5)
    assert traj.t.tolist() == pytest.approx([0, 0.5, 1.0, 1.5, 2.0])
    F = traj.series("F")
    assert np.all(np.diff(F) < 0) and np.allclose(traj.series("mass"), 1, atol=1e-12)
    assert np.all(np.diff(traj.series("kl")) < 0) and traj.series("m_g").shape == (5, 3)
    jko = solve(SemiDiscreteSpace.path(3), QuadraticPotential(a=[1, 1, 1], c=[0, 0.5, 0.2]), Grid(dim=0), 0.5,
                np.array([[0.7], [0.2], [0.1]]), 1.0, 0.1, method="jko")
    assert jko.series("F")[-1] < jko.series("F")[0]


def test_flow_annealing_follows_the_schedule():
    space = SemiDiscreteSpace.path(2)
    pot = QuadraticPotential(a=[1, 1], c=[0.0, 0.3])
    s = GridSolver(space, pot, Grid(dim=0), 1.0)
    seen = []
    Flow(s, get_schedule("geometric", T0=1.0, q=0.5)).run(np.array([[0.5], [0.5]]), 0.5, 0.1,
                                                          callback=lambda k, t, r, rec: seen.append(s.T))
    assert seen == pytest.approx([1.0, 0.5, 0.25, 0.125, 0.0625])
    with pytest.raises(ValueError, match="T > 0"):
        Flow(s, lambda t: 0.0).run(np.array([[0.5], [0.5]]), 0.2, 0.1)
