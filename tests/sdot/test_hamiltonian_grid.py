"""Damped Hamiltonian dynamics on a grid for R^d x G (spec 4.5, F.4): closed forms and invariants."""

import numpy as np
import pytest

from sdot import QuadraticPotential, SemiDiscreteSpace
from sdot.grid import Grid, GridSolver, logmean_derivatives
from sdot.hamiltonian import DampedHamiltonian, GridHamiltonian, logmean_second_derivatives

SPACE3 = SemiDiscreteSpace.path(3, dim=1)
POT3 = QuadraticPotential(a=[1.0, 0.7, 0.8], c=[0.0, 0.2, 0.1], m=[[0.3], [-0.3], [0.0]])


def shifted_gibbs(pot, grid, weights, shift=0.5, T=1.0):
    """Node-weighted Gibbs profiles translated by ``shift``: off equilibrium in the bulk, with tails
    whose log-gradient matches the force (a start far from that empties tail cells; see the
    GridHamiltonian docstring)."""
    rho = np.exp(-np.asarray(pot.all_nodes(grid.centers - shift)).T / T) * np.asarray(weights)[:, None]
    return rho / (rho.sum() * grid.cell_volume)


def grid3(n=48):
    grid = Grid(lower=-4, upper=4, n_cells=n, dim=1)
    return grid, shifted_gibbs(POT3, grid, [0.5, 0.3, 0.2])


@pytest.mark.parametrize("theta,kappa", [("logmean", 1.0), ("logmean", 0.5), ("logmean_pi", 1.0), ("arithmetic", 1.0)])
def test_grid_energy_conserved_without_damping(theta, kappa):
    grid, rho0 = grid3()
    ham = GridHamiltonian(SPACE3, POT3, grid, T=1.0, theta=theta, kappa=kappa)
    tr = ham.run(rho0, 2.5, 0.01)
    assert tr.rho.shape == (251, 3, 48) and tr.phi.shape == (251, 3, 48)
    drift = np.abs(tr.H - tr.H[0]).max()
    assert drift < 1e-6 * abs(tr.H[0])
    assert np.abs(tr.rho.sum(axis=(1, 2)) * grid.h - 1).max() < 1e-12
    assert tr.kinetic.max() > 0.1  # it really moved: K exchanged with F is 1e5 times the drift
    assert np.ptp(ham.node_masses(tr.rho)[:, 1]) > 1e-2  # and mass moved between nodes
    # the midpoint rule's energy error is O(dt^2), not a drift: doubling dt quadruples it
    drift2 = np.abs(ham.run(rho0, 2.5, 0.02).H - tr.H[0]).max()
    assert 3.0 < drift2 / drift < 5.0


@pytest.mark.parametrize("theta", ["logmean", "logmean_pi"])
def test_grid_energy_decay_rate_is_minus_two_gamma_K(theta):
    grid, rho0 = grid3(40)
    gamma = 0.5
    tr = GridHamiltonian(SPACE3, POT3, grid, T=1.0, theta=theta, gamma=gamma).run(rho0, 3.0, 0.01)
    dH = np.diff(tr.H) / np.diff(tr.t)
    Km = 0.5 * (tr.kinetic[1:] + tr.kinetic[:-1])
    assert np.all(dH <= 1e-12)
    assert np.abs(dH + 2 * gamma * Km).max() < 1e-3 * np.abs(dH).max()


def _oscillator_error(n, gamma, a=1.0, c=0.0, T=1.0, mu0=0.5, L=5.0, t_final=4 * np.pi):
    """Max over t of |mean of rho(t) - mu(t)|, mu'' + gamma mu' + a (mu - c) = 0, mu(0) = mu0, mu'(0) = 0."""
    grid = Grid(lower=-L, upper=L, n_cells=n, dim=1)
    space = SemiDiscreteSpace([[0.0]], dim=1)  # K = 1: plain Wasserstein-Hamiltonian flow on R
    ham = GridHamiltonian(space, QuadraticPotential(a=[a], c=[0.0], m=[[c]]), grid, T=T, gamma=gamma)
    x = grid.centers[:, 0]
    rho0 = np.exp(-a * (x - mu0) ** 2 / (2 * T))[None]  # the Gibbs width T/a: a rigid translation
    rho0 /= rho0.sum() * grid.h
    tr = ham.run(rho0, t_final, 0.4 * grid.h)
    mu = tr.rho[:, 0, :] @ x * grid.h
    w = np.sqrt(a - gamma**2 / 4)
    A = mu0 - c
    exact = c + np.exp(-gamma * tr.t / 2) * (A * np.cos(w * tr.t) + gamma * A / (2 * w) * np.sin(w * tr.t))
    return np.abs(mu - exact).max()


@pytest.mark.parametrize("gamma", [0.0, 0.4])
def test_mean_is_a_damped_oscillator(gamma):
    """K = 1, f = a (x - c)^2 / 2, rho0 Gaussian of variance T/a: in the continuum the profile
    translates rigidly with a uniform velocity mu'(t) (pressure and force differ by a constant),
    so mu'' + gamma mu' + a (mu - c) = 0 exactly. Walls 4.5 standard deviations beyond the
    excursion (wall density ~ 1e-5 of the peak). The grid error is second order in h (dt = 0.4 h):
    about 0.3 h^2 over two periods."""
    e1, e2 = _oscillator_error(40, gamma), _oscillator_error(80, gamma)
    h1 = 10.0 / 40
    assert e1 < 0.5 * h1**2
    assert e2 < e1 / 3  # second order: the error falls ~4x when h halves


def test_large_damping_relaxes_to_the_discrete_gibbs_density():
    grid, rho0 = grid3(40)
    ham = GridHamiltonian(SPACE3, POT3, grid, T=1.0, gamma=2.0)
    tr = ham.run(rho0, 40.0, 0.1, record_every=100)
    f = np.asarray(POT3.all_nodes(grid.centers)).T
    pi = np.exp(-f)
    pi /= pi.sum() * grid.h
    assert np.abs(tr.rho[-1] - pi).max() < 1e-6 * pi.max()
    # F_T at the discrete Gibbs density is -T log Z (Z = h sum exp(-f/T)): the h^d convention of F_T
    assert ham.free_energy(pi) == pytest.approx(-np.log(np.exp(-f).sum() * grid.h), abs=1e-12)
    assert tr.F[-1] == pytest.approx(ham.free_energy(pi), abs=1e-9)


def test_overdamped_limit_is_the_first_order_grid_flow():
    """gamma -> infinity: rho(gamma s) -> the gradient flow at time s; with theta = logmean_pi it is
    exactly GridSolver's glauber / SQRA generator (same 1/h^2 face weight, same kappa)."""
    grid, rho0 = grid3(40)
    s = 0.5
    ref = GridSolver(SPACE3, POT3, grid, T=1.0, law="glauber", kappa=0.5).evolve(rho0, s, 1.0, method="expm")
    errs = []
    for G in (10.0, 20.0):
        ham = GridHamiltonian(SPACE3, POT3, grid, T=1.0, theta="logmean_pi", gamma=G, kappa=0.5)
        errs.append(np.abs(ham.run(rho0, G * s, 0.05, record_every=10**6).rho[-1] - ref).max())
    change = np.abs(ref - rho0).max()
    assert errs[1] < 1e-2 * change
    assert errs[1] < errs[0] / 3  # O(1/gamma^2)


def test_grid_with_dim_zero_is_the_graph_hamiltonian():
    space = SemiDiscreteSpace.path(3)
    f = [0.0, 0.5, 0.2]
    g = DampedHamiltonian.on_grid(space, np.array(f)[:, None], Grid(dim=0), T=0.5, gamma=0.3)
    assert isinstance(g, GridHamiltonian)
    d = DampedHamiltonian(space, f, T=0.5, gamma=0.3)
    rho0 = np.array([0.6, 0.3, 0.1])
    a, b = g.run(rho0[:, None], 2.0, 0.01), d.run(rho0, 2.0, 0.01)
    assert np.allclose(a.rho[:, :, 0], b.rho, atol=1e-13, rtol=0)
    assert np.allclose(a.H, b.H, atol=1e-13, rtol=0)


def test_kinetic_energy_of_a_linear_potential_is_half_v_squared():
    """phi_g(x) = v x: K = (1/2) int rho |grad phi|^2 = v^2 / 2 (no graph term: phi equal on all nodes)."""
    grid, rho0 = grid3(80)
    ham = GridHamiltonian(SPACE3, POT3, grid, T=1.0)
    v = 0.7
    phi = np.tile(v * grid.centers[:, 0], (3, 1))
    assert ham.kinetic(rho0, phi) == pytest.approx(v**2 / 2, rel=(grid.h * 2) ** 2)


def test_two_dimensional_grid_conserves_energy_and_mass():
    space = SemiDiscreteSpace.path(2, dim=2)
    pot = QuadraticPotential(a=[1.0, 0.8], c=[0.0, 0.3], m=[[0.2, 0.0], [-0.2, 0.1]])
    grid = Grid(lower=-3.5, upper=3.5, n_cells=14, dim=2)
    rho0 = shifted_gibbs(pot, grid, [0.7, 0.3], shift=np.array([0.4, -0.2]))
    ham = GridHamiltonian(space, pot, grid, T=1.0)
    tr = ham.run(rho0, 2.0, 0.01)
    assert tr.rho.shape == (201, 2, 196)
    assert np.abs(tr.H - tr.H[0]).max() < 1e-6 * abs(tr.H[0])
    assert np.abs(tr.rho.sum(axis=(1, 2)) * grid.cell_volume - 1).max() < 1e-12
    assert tr.kinetic.max() > 0.05
    # the flow is equivariant under the swap of the two axes when the data are (reflection test)
    pot_s = QuadraticPotential(a=[1.0, 0.8], c=[0.0, 0.3], m=[[0.0, 0.2], [0.1, -0.2]])
    rho_s = grid.to_spatial(rho0).transpose(0, 2, 1).reshape(2, -1)
    tr_s = GridHamiltonian(space, pot_s, grid, T=1.0).run(rho_s, 2.0, 0.01, record_every=200)
    back = grid.to_spatial(tr_s.rho[-1]).transpose(0, 2, 1).reshape(2, -1)
    assert np.abs(back - tr.rho[-1]).max() < 1e-10 * tr.rho[-1].max()


def test_newton_path_for_large_steps():
    """dt beyond the fixed-point contraction (dt sqrt(T) / h ~ 3): sparse Newton; the step is still
    symplectic (bounded O(dt^2) energy error) and converges to the small-dt solution as dt^2."""
    grid, rho0 = grid3(32)
    ham = GridHamiltonian(SPACE3, POT3, grid, T=1.0)
    ref = ham.run(rho0, 2.0, 0.005, record_every=10**6).rho[-1]
    errs = []
    for dt in (0.5, 0.25):
        tr = ham.run(rho0, 2.0, dt)
        assert np.abs(tr.rho.sum(axis=(1, 2)) * grid.h - 1).max() < 1e-12
        assert np.abs(tr.H - tr.H[0]).max() < 2e-2 * abs(tr.H[0])
        errs.append(np.abs(tr.rho[-1] - ref).max())
    assert 3.0 < errs[0] / errs[1] < 5.0


def test_logmean_second_derivatives():
    a = np.array([1.0, 2.0, 0.3, 2.0, 1e-3, 5.0])
    b = np.array([1.0, 2.0 * (1 + 4e-4), 0.5, 1.0, 1.0, 5.0 * (1 + 2e-3)])
    daa, dab, dbb = logmean_second_derivatives(a, b)
    # at a = b: lambda''(1) = -1/6, so Lambda_aa = Lambda_bb = -1/(6a), Lambda_ab = 1/(6a)
    assert daa[0] == pytest.approx(-1 / 6) and dab[0] == pytest.approx(1 / 6) and dbb[0] == pytest.approx(-1 / 6)
    e = 1e-6
    fd_aa = (logmean_derivatives(a * (1 + e), b)[0] - logmean_derivatives(a * (1 - e), b)[0]) / (2 * e * a)
    fd_ab = (logmean_derivatives(a, b * (1 + e))[0] - logmean_derivatives(a, b * (1 - e))[0]) / (2 * e * b)
    fd_bb = (logmean_derivatives(a, b * (1 + e))[1] - logmean_derivatives(a, b * (1 - e))[1]) / (2 * e * b)
    for ours, fd in ((daa, fd_aa), (dab, fd_ab), (dbb, fd_bb)):
        assert np.allclose(ours, fd, rtol=1e-5, atol=0)
    # 1-homogeneity of Lambda: Lambda_a is 0-homogeneous, so a Lambda_aa + b Lambda_ab = 0
    assert np.allclose(a * daa + b * dab, 0, atol=1e-10 * np.abs(a * daa).max())


def test_grid_hamiltonian_bad_input():
    grid, rho0 = grid3(20)
    ham = GridHamiltonian(SPACE3, POT3, grid, T=1.0)
    with pytest.raises(ValueError, match=r"shape \(3, 20\)"):
        ham.run(rho0[:, :-1], 1.0, 0.1)
    bad = rho0.copy()
    bad[1, 4] = -0.01
    with pytest.raises(ValueError, match=r"rho0\[1, 4\] = -0.01 is negative"):
        ham.run(bad, 1.0, 0.1)
    bad[1, 4] = 0.0
    bad /= bad.sum() * grid.h
    with pytest.raises(ValueError, match=r"rho0\[1, 4\] = 0.0; .*strictly positive"):
        ham.run(bad, 1.0, 0.1)
    with pytest.raises(ValueError, match="total mass"):
        ham.run(2 * rho0, 1.0, 0.1)
    with pytest.raises(ValueError, match=r"phi0 must have shape \(3, 20\)"):
        ham.run(rho0, 1.0, 0.1, phi0=np.zeros(5))
    with pytest.raises(ValueError, match=r"dt must be a finite number > 0, got -0.1"):
        ham.run(rho0, 1.0, -0.1)
    with pytest.raises(ValueError, match=r"T = -0.5"):
        GridHamiltonian(SPACE3, POT3, grid, T=-0.5, theta="logmean_pi")
    with pytest.raises(ValueError, match=r"'logmean_pi' needs a temperature T > 0, got T = 0.0"):
        GridHamiltonian(SPACE3, POT3, grid, T=0.0, theta="logmean_pi")
    with pytest.raises(ValueError, match="gamma must be >= 0, got -1"):
        GridHamiltonian(SPACE3, POT3, grid, T=1.0, gamma=-1)
    with pytest.raises(ValueError, match="kappa must be a finite number > 0, got 0"):
        GridHamiltonian(SPACE3, POT3, grid, T=1.0, kappa=0)
    with pytest.raises(ValueError, match="d = 1 but the grid has dim = 2"):
        GridHamiltonian(SPACE3, POT3, Grid(-1, 1, 4, dim=2), T=1.0)
    with pytest.raises(ValueError, match="potential has 2 nodes but the graph has K = 3"):
        GridHamiltonian(SPACE3, QuadraticPotential(a=[1, 1], c=[0, 0], m=[[0], [0]]), grid, T=1.0)
    with pytest.raises(ValueError, match=r"cell energies must have shape \(K, M\) = \(3, 20\)"):
        GridHamiltonian(SPACE3, np.zeros((3, 7)), grid, T=1.0)
    with pytest.raises(ValueError, match="unknown theta 'upwind'"):
        GridHamiltonian(SPACE3, POT3, grid, T=1.0, theta="upwind")
    with pytest.raises(ValueError, match="negative"):
        GridHamiltonian([[0, -1], [-1, 0]], np.zeros((2, 20)), grid, T=1.0)


def test_emptying_a_state_raises_a_clear_error():
    """A uniform start in a steep well: the force pulls mass off the walls faster than the pressure
    resists, and the log-mean kinetic term empties the wall cells (near-vacuum)."""
    space = SemiDiscreteSpace.path(2, dim=1)
    pot = QuadraticPotential(a=[1.0, 1.0], c=[0.0, 0.3], m=[[0.5], [-0.5]])
    grid = Grid(lower=-5, upper=5, n_cells=40, dim=1)
    ham = GridHamiltonian(space, pot, grid, T=0.5)
    with pytest.raises(FloatingPointError, match="emptying a state"):
        ham.run(np.full((2, 40), 1 / 20), 1.0, 0.01)


def test_from_edges_is_the_graph_core():
    f = [0.0, 0.5, 0.2]
    a = DampedHamiltonian.from_edges([0, 1], [1, 2], [1.0, 1.0], f, T=0.5)
    b = DampedHamiltonian(SemiDiscreteSpace.path(3), f, T=0.5)
    ta, tb = a.run([0.6, 0.3, 0.1], 1.0, 0.01), b.run([0.6, 0.3, 0.1], 1.0, 0.01)
    assert np.allclose(ta.rho, tb.rho, atol=1e-14, rtol=0)
    with pytest.raises(ValueError, match=r"edge weight w\[1\] = -1.0"):
        DampedHamiltonian.from_edges([0, 1], [1, 2], [1.0, -1.0], f, T=0.5)
    with pytest.raises(ValueError, match=r"edge endpoints must lie in \[0, 3\)"):
        DampedHamiltonian.from_edges([0, 1], [1, 3], [1.0, 1.0], f, T=0.5)


def test_grid_restart_never_raises_H():
    grid, rho0 = grid3(24)
    tr = GridHamiltonian(SPACE3, POT3, grid, T=1.0, restart="gradient").run(rho0, 6.0, 0.02)
    assert len(tr.restarts) > 0
    for t_r in tr.restarts:
        k = int(np.argmin(np.abs(tr.t - t_r)))
        assert tr.kinetic[k] == 0.0 and tr.H[k] <= tr.H[k - 1] + 1e-8
    # with restarts the flow keeps descending: F at the end is below its start
    assert tr.F[-1] < tr.F[0]
