"""The particle solver realises the grid solver's flow (spec semi-discrete-flow.md 1.2, 7.2, 8.6).

Problem: d = 1, K = 3 (complete graph), T = 0.5, asymmetric quadratic and double-well potentials,
glauber and metropolis rates, initial datum ``rho_g(0, x) = p_g N(x; 0.5, 0.6^2)``.

* node masses within 4/sqrt(N) of the grid's at N = 20,000 at t = 0.25, 0.5, 1, 2;
* per-node W1 between the particle histogram and the grid density below ``W1_TOL = 0.05``:
  the W1 distance between n >= 1,500 samples and their law (std <= 1) is about 0.8 std / sqrt(n)
  <= 0.02 on average, grid O(h^2) and time-step errors are < 0.005 here, so 0.05 leaves a margin of
  about 2.5 for the sampling spread (observed maximum 0.025);
* stationary masses equal the closed form ``p_g ∝ exp(-c_g/T) (2 pi T / a_g)^{1/2}`` within 3
  sigma, sigma = sqrt(p (1 - p) / N) (spec 8.6).

Grid reference: implicit Euler with tau = 1e-3 on 300 cells of [-4.5, 4.5] (the glauber rates
exp(Delta f / 2T) at the box's corners make expm_multiply needlessly stiff; implicit Euler is an
M-matrix step and its O(tau) error is far below the tolerance).
"""

import numpy as np
import pytest
from scipy.stats import norm, wasserstein_distance

from sdot import DoubleWellPotential, QuadraticPotential, SemiDiscreteSpace
from sdot.particles import ParticleState, gibbs_node_masses, strang_step

grid_mod = pytest.importorskip("sdot.grid")
Grid, GridSolver = grid_mod.Grid, grid_mod.GridSolver

T = 0.5
N = 20_000
TIMES = (0.25, 0.5, 1.0, 2.0)
W1_TOL = 0.05
P0, M0, S0 = np.array([0.6, 0.3, 0.1]), 0.5, 0.6

POTENTIALS = {
    "quadratic": QuadraticPotential([1.0, 2.5, 0.6], [0.0, 0.4, 0.2], [[-1.0], [0.3], [1.2]]),
    "double_well": DoubleWellPotential([1.0, 1.5, 0.8], [1.0, 0.8, 1.2], [0.3, -0.2, 0.1], [0.0, 0.2, -0.1], dim=1),
}


def _grid_reference(space, f, law, grid):
    rho0 = P0[:, None] * norm.pdf(grid.centers[:, 0], M0, S0)[None, :]
    rho0 /= rho0.sum() * grid.cell_volume
    solver = GridSolver(space, f, grid, T, law=law)
    out, rho, t_prev = {}, rho0, 0.0
    for t in TIMES:
        rho = solver.evolve(rho, t - t_prev, 1e-3, method="implicit")
        out[t], t_prev = rho, t
    return solver, out


@pytest.mark.parametrize("law", ["glauber", "metropolis"])
@pytest.mark.parametrize("name", ["quadratic", "double_well"])
def test_particles_agree_with_grid(name, law):
    space = SemiDiscreteSpace.complete(3, dim=1)
    f = POTENTIALS[name]
    grid = Grid(lower=-4.5, upper=4.5, n_cells=300, dim=1)
    solver, ref = _grid_reference(space, f, law, grid)
    s = ParticleState.sample(N, P0, [M0], S0, rng=1)
    diffusion = "ou" if name == "quadratic" else "langevin"  # exact OU where it exists
    for t in TIMES:
        while s.t < t - 1e-9:
            strang_step(s, space, f, law, T, 0.01, diffusion=diffusion)
        rho = ref[t]
        m_grid = solver.node_masses(rho)
        assert m_grid.sum() == pytest.approx(1.0, abs=1e-10)
        dev = np.abs(s.node_fractions(3) - m_grid)
        assert np.all(dev < 4 / np.sqrt(N)), (t, dev * np.sqrt(N))
        for k in range(3):
            w1 = wasserstein_distance(s.x[s.g == k, 0], grid.centers[:, 0], v_weights=np.clip(rho[k], 0, None))
            assert w1 < W1_TOL, (t, k, w1)


@pytest.mark.parametrize("law, diffusion", [("glauber", "ou"), ("metropolis", "ou"), ("glauber", "underdamped")])
def test_stationary_node_masses_match_the_gibbs_closed_form(law, diffusion):
    """From all mass on node 0 to the Gibbs node masses; conditional laws N(m_g, T/a_g)."""
    space = SemiDiscreteSpace.complete(3, dim=1)
    f = QuadraticPotential([1.0, 2.5, 0.6], [0.0, 0.4, 0.2], [[-0.4], [0.2], [0.5]])
    p = gibbs_node_masses(f, T)
    assert np.allclose(p, np.exp(-f.c / T) * np.sqrt(2 * np.pi * T / f.a) / np.sum(
        np.exp(-f.c / T) * np.sqrt(2 * np.pi * T / f.a)))
    s = ParticleState.sample(N, [1.0, 0.0, 0.0], [0.0], 0.5, rng=3)
    if diffusion == "underdamped":
        s.with_momenta(T)
    while s.t < 10.0:
        strang_step(s, space, f, law, T, 0.05, diffusion=diffusion)
    m = s.node_fractions(3)
    sigma = np.sqrt(p * (1 - p) / N)
    assert np.all(np.abs(m - p) < 3 * sigma), (m - p) / sigma
    for k in range(3):
        xk = s.x[s.g == k, 0]
        v = T / f.a[k]
        assert abs(xk.mean() - f.m[k, 0]) < 4 * np.sqrt(v / xk.size)
        assert abs(xk.var() - v) < 4 * v * np.sqrt(2 / xk.size)


def test_gibbs_is_invariant_under_the_particle_step():
    """Start at pi_T (exact samples) and stay there (spec 8.6, statistically)."""
    space = SemiDiscreteSpace.complete(3, dim=1)
    f = QuadraticPotential([1.0, 2.5, 0.6], [0.0, 0.4, 0.2], [[-1.0], [0.3], [1.2]])
    p = gibbs_node_masses(f, T)
    s = ParticleState.sample(N, p, f.m, np.sqrt(T / f.a), rng=5)
    m_start = s.node_fractions(3)
    for _ in range(40):
        strang_step(s, space, f, "metropolis", T, 0.05, diffusion="ou")
    sigma = np.sqrt(p * (1 - p) / N)
    assert np.all(np.abs(s.node_fractions(3) - p) < 4 * sigma)
    assert np.all(np.abs(m_start - p) < 4 * sigma)
