"""Free energy, Gibbs measure, first variation and diagnostics (spec 4.1, 8.6, 1.7)."""

import numpy as np
import pytest

from sdot import QuadraticPotential, SemiDiscreteSpace
from sdot.diagnostics import chi_square_to_gibbs, diagnose, kl_to_gibbs, node_masses, tv_node_masses
from sdot.energy import FreeEnergy, gibbs_node_masses_quadratic
from sdot.grid import Grid, GridSolver


def _setup(dim=1, T=0.4):
    pot = QuadraticPotential(a=[1.0, 3.0, 0.5], c=[0.0, 0.2, 0.4], m=np.array([[-1.0, 0.5], [0.5, 0.0], [1.0, -0.5]])[:, :dim])
    return pot, Grid(-5, 5, 64 if dim == 2 else 200, dim), FreeEnergy(pot, T)


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_free_energy_is_T_KL_minus_T_logZ(dim):
    pot, grid, E = _setup(dim)
    if dim == 0:
        grid = Grid(dim=0)
    rng = np.random.default_rng(0)
    rho = rng.uniform(0.1, 1, (3, grid.n_points))
    rho /= rho.sum() * grid.cell_volume
    assert E(rho, grid) == pytest.approx(E.T * E.kl(rho, grid) - E.T * E.log_partition(grid), rel=1e-12)
    pi = E.gibbs(grid)
    assert E(pi, grid) == pytest.approx(-E.T * E.log_partition(grid), rel=1e-12)
    assert E(rho, grid) > E(pi, grid)  # pi minimises F
    phi = E.first_variation(pi, grid)
    assert np.ptp(phi) < 1e-12 * max(1, abs(phi).max())  # dF/drho constant at the minimiser
    p = E.parts(rho, grid)
    assert p["F"] == pytest.approx(p["V"] + E.T * p["H"])


@pytest.mark.parametrize("dim", [1, 2])
def test_gibbs_node_masses_closed_form(dim):
    pot, grid, E = _setup(dim)
    p = E.gibbs_node_masses()
    expected = np.exp(-pot.c / E.T) * (2 * np.pi * E.T / pot.a) ** (dim / 2)
    assert np.allclose(p, expected / expected.sum(), rtol=1e-14)
    assert np.allclose(E.gibbs_node_masses(grid), p, atol=1e-9)  # midpoint rule on a large box


def test_first_variation_matches_finite_differences():
    pot, grid, E = _setup(1)
    rng = np.random.default_rng(4)
    rho = rng.uniform(0.1, 1, (3, grid.n_points))
    v = rng.normal(size=rho.shape)
    eps = 1e-6
    fd = (E(rho + eps * v, grid) - E(rho - eps * v, grid)) / (2 * eps)
    assert fd == pytest.approx(np.sum(E.first_variation(rho, grid) * v) * grid.cell_volume, rel=1e-7)


def test_zero_temperature_energy_and_errors():
    pot, grid, _ = _setup(1)
    E0 = FreeEnergy(pot, 0.0)
    rho = np.full((3, grid.n_points), 1 / (3 * 10.0))
    assert E0(rho, grid) == pytest.approx(E0.potential_energy(rho, grid))
    with pytest.raises(ValueError, match="T > 0"):
        E0.gibbs(grid)
    with pytest.raises(ValueError, match=">= 0"):
        FreeEnergy(pot, -1.0)
    with pytest.raises(ValueError, match="T > 0"):
        gibbs_node_masses_quadratic([1, 1], [0, 0], 0.0, 1)


def test_diagnostics_at_and_away_from_gibbs():
    pot, grid, E = _setup(1)
    s = GridSolver(SemiDiscreteSpace.complete(3, dim=1), pot, grid, E.T)
    pi = s.gibbs()
    d = diagnose(s, pi, t=0.0)
    assert d["mass"] == pytest.approx(1.0, abs=1e-13)
    assert d["kl"] == pytest.approx(0, abs=1e-13) and d["chi2"] == pytest.approx(0, abs=1e-7)
    assert d["D"] == pytest.approx(0, abs=1e-10) and d["tv"] < 1e-5  # box truncation of the continuous marginal
    rho = pi * np.array([2.0, 0.5, 0.5])[:, None]
    rho /= rho.sum() * grid.h
    m = node_masses(rho, grid)
    assert tv_node_masses(m, node_masses(pi, grid)) > 0.05
    # Pinsker: TV(full) <= sqrt(KL / 2); chi-square dominates KL: KL <= log(1 + chi^2)
    kl = kl_to_gibbs(rho, pi, grid)
    assert tv_node_masses(m, node_masses(pi, grid)) <= np.sqrt(kl / 2)
    assert kl <= np.log1p(chi_square_to_gibbs(rho, pi, grid) ** 2) + 1e-12
