"""The expm reference of GridSolver refuses results that blew up (huge rates: wide box, small T)."""

import numpy as np
import pytest
import scipy.linalg

from sdot import QuadraticPotential, SemiDiscreteSpace
from sdot.grid import Grid, GridSolver

SPACE = SemiDiscreteSpace.path(3, dim=1)
POT = QuadraticPotential(a=[1.0, 2.0, 1.5], c=[0.0, 0.1, 0.2], m=[[0.5], [-0.5], [0.0]])


def _solver(n, L=6.0, T=0.1):
    grid = Grid(lower=-L, upper=L, n_cells=n, dim=1)
    with np.errstate(over="ignore"):
        s = GridSolver(SPACE, POT, grid, T=T, method="expm")
    return s, np.full((3, n), 1.0 / (3 * n * grid.h))


def test_dense_expm_blow_up_is_refused():
    # SQRA face rates (T/h^2) exp(|Delta f| / 2T) reach ~1e56 at the walls: scaling and squaring gives NaN
    s, rho0 = _solver(40)
    with pytest.raises(FloatingPointError, match=r"\|\|t A\|\|_1 = 1(\.\d+)?e\+56.*'implicit' or a smaller t"):
        s.evolve(rho0, 1.0, 1.0)
    assert not any(k[0] == "expm" for k in s._lu)  # the bad matrix was not cached
    # the implicit step it recommends is fine (positive, mass-conserving)
    out = s.evolve(rho0, 1.0, 0.1, method="implicit")
    assert out.min() >= 0 and abs(out.sum() * s.grid.h - 1) < 1e-12


def test_expm_multiply_is_refused_before_it_hangs():
    # 3 x 600 > 1500 states: expm_multiply would need ~||t A||_1 products
    s, rho0 = _solver(600)
    with pytest.raises(FloatingPointError, match=r"\|\|t A\|\|_1 = .*'implicit' or a smaller t"):
        s.evolve(rho0, 1.0, 1.0)


def test_mass_loss_is_refused(monkeypatch):
    # a finite result that loses mass (mocked expm) must not pass silently
    s, rho0 = _solver(20, L=3.0, T=1.0)
    assert abs(s.evolve(rho0, 0.5, 1.0).sum() * s.grid.h - 1) < 1e-10  # the real one is fine
    s._lu.clear()
    monkeypatch.setattr(scipy.linalg, "expm", lambda A: 0.9 * np.eye(A.shape[0]))
    with pytest.raises(FloatingPointError, match="changed the mass"):
        s.evolve(rho0, 0.25, 1.0)
