"""General free energies and the sparse-Newton JKO step (issue 16): closed forms, orders, bad input."""

import numpy as np
import pytest

from sdot import QuadraticPotential, SemiDiscreteSpace
from sdot.energy import gibbs_node_masses_quadratic
from sdot.flow import Flow
from sdot.free_energy import (CallableInternalEnergy, Entropy, GeneralFreeEnergy, Interaction, Kernel,
                              PorousMedium, gaussian_kernel, quadratic_kernel)
from sdot.grid import Grid
from sdot.jko import JKOSolveError, JKOStep
from sdot.particles import MeanFieldPotential, ParticleSolver, ParticleState

# ---- Barenblatt solution of rho_t = (rho^2)_xx (m = 2, d = 1) -------------------------------------
BC = (3 / (4 * np.sqrt(12))) ** (2 / 3)  # unit mass


def barenblatt_cells(grid, t):
    """Exact cell averages of t^(-1/3) (C - x^2 / (12 t^(2/3)))_+."""
    e = grid.lower + np.arange(grid.n_cells + 1) * grid.h
    a = np.sqrt(12 * BC) * t ** (1 / 3)
    lo, hi = np.clip(e[:-1], -a, a), np.clip(e[1:], -a, a)
    F = lambda x: t ** (-1 / 3) * (BC * x - x**3 / (36 * t ** (2 / 3)))
    return (F(hi) - F(lo)) / grid.h


def pme(n, scheme="jko"):
    grid = Grid(-2.5, 2.5, n, 1)
    E = GeneralFreeEnergy(None, PorousMedium(2.0), n_nodes=1)
    return JKOStep(SemiDiscreteSpace.path(1, dim=1), E, grid, scheme=scheme), grid


def _slope(x, y):
    return np.polyfit(np.log(x), np.log(y), 1)[0]


def test_barenblatt_orders_in_tau_and_h():
    t0, t1 = 0.1, 0.3
    # time: against a fine Crank-Nicolson reference on the same grid (isolates the tau error)
    J, grid = pme(60)
    r0 = barenblatt_cells(grid, t0)[None]
    ref = pme(60, "crank_nicolson")[0].evolve(r0, t1 - t0, 0.005)
    taus = [0.04, 0.02, 0.01]
    e_jko = [np.abs(J.evolve(r0, t1 - t0, tau) - ref).sum() * grid.h for tau in taus]
    Jc = pme(60, "crank_nicolson")[0]
    e_cn = [np.abs(Jc.evolve(r0, t1 - t0, tau) - ref).sum() * grid.h for tau in taus]
    assert 0.8 <= _slope(taus, e_jko) <= 1.2, e_jko
    assert _slope(taus, e_cn) >= 1.7 and e_cn[-1] < e_jko[-1] / 10, e_cn
    # space: Crank-Nicolson (small time error) against the exact Barenblatt profile
    errs = []
    for n in (25, 50, 100):
        Jn, g = pme(n, "crank_nicolson")
        r = Jn.evolve(barenblatt_cells(g, t0)[None], t1 - t0, 0.02)
        errs.append(np.abs(r[0] - barenblatt_cells(g, t1)).sum() * g.h)
        assert r.min() >= 0 and abs(r.sum() * g.h - 1) < 1e-12
    assert _slope([5 / 25, 5 / 50, 5 / 100], errs) >= 1.5 and errs[-1] < 1e-3, errs


def test_pme_energy_monotone_support_spreads_and_mass_kept():
    J, grid = pme(80)
    r = barenblatt_cells(grid, 0.05)[None]
    F = [J.free_energy(r.ravel())]
    supp = [(r > 1e-9).sum()]
    for _ in range(10):
        res = J.step(r, 0.02)
        r = res.rho
        F.append(J.free_energy(r.ravel()))
        supp.append((r > 1e-9).sum())
        assert abs(res.info["mass_drift"]) < 1e-13 and r.min() > -1e-300
    assert np.all(np.diff(F) < 0) and supp[-1] > supp[0]


def test_aggregation_diffusion_steady_state_closed_form():
    # CCWW's class (their eq. (1)): rho_t = div(rho grad W * rho) + nu (rho^2)_xx with W = |x|^2 / 2.
    # Steady state (centre of mass c kept): rho = (C - (x - c)^2 / 2)_+ / (2 nu), half-width (3 nu)^(1/3).
    nu, n = 0.5, 80
    grid = Grid(-3, 3, n, 1)
    E = GeneralFreeEnergy(None, PorousMedium(2.0, nu=nu), interaction=quadratic_kernel(1.0), n_nodes=1)
    J = JKOStep(SemiDiscreteSpace.path(1, dim=1), E, grid)
    x = grid.centers[:, 0]
    r = np.exp(-((x - 0.3) ** 2) / 0.5)[None]
    r /= r.sum() * grid.h
    c = float((x * r[0]).sum() * grid.h)
    Fs = [J.free_energy(r.ravel())]
    for _ in range(12):
        r = J.step(r, 0.6).rho
        Fs.append(J.free_energy(r.ravel()))
    assert np.all(np.diff(Fs) <= 1e-12 * abs(Fs[0]))
    a = (3 * nu) ** (1 / 3)
    exact = np.maximum(a * a / 2 - (x - c) ** 2 / 2, 0) / (2 * nu)
    assert abs((x * r[0]).sum() * grid.h - c) < 1e-6  # centre of mass kept (to the scheme's accuracy)
    assert np.abs(r[0] - exact).sum() * grid.h < 0.02


@pytest.mark.parametrize("theta", ["arithmetic", "logmean"])
def test_graph_part_relaxes_to_gibbs_masses_with_entropy(theta):
    T = 0.5
    pot = QuadraticPotential(a=[1.0, 3.0], c=[0.0, 0.2], m=[[0.5], [-0.5]])
    grid = Grid(-4, 4, 64, 1)
    J = JKOStep(SemiDiscreteSpace.path(2, dim=1), GeneralFreeEnergy(pot, Entropy(T)), grid, theta=theta)
    x = grid.centers[:, 0]
    r = np.exp(-((x - 1) ** 2))[None] * np.array([[0.1], [1.0]])
    r /= r.sum() * grid.h
    traj = Flow(J).run(r, 12.0, 1.0)
    m = traj.diagnostics[-1]["m_g"]
    p = gibbs_node_masses_quadratic([1.0, 3.0], [0.0, 0.2], T, 1)
    assert np.allclose(m, p, atol=2e-3), (m, p)
    F = traj.series("F")
    assert np.all(np.diff(F) <= 1e-12)
    assert max(abs(d["mass_drift"]) for d in traj.diagnostics) < 1e-12


def test_temperature_schedule_drives_the_jko_step():
    pot = QuadraticPotential(a=np.ones(3), c=[0.0, 0.5, 0.2])
    J = JKOStep(SemiDiscreteSpace.path(3), pot, Grid(dim=0), 1.0)
    traj = Flow(J, schedule=lambda t: 1.0 / (1.0 + t)).run(np.array([[0.2], [0.5], [0.3]]), 2.0, 0.25)
    # the record after step k carries the temperature that step used, T(t_{k-1})
    assert [d["T"] for d in traj.diagnostics[1:]] == pytest.approx([1 / (1 + k * 0.25) for k in range(8)])
    assert traj.diagnostics[-1]["kl"] >= 0
    with pytest.raises(ValueError, match="entropy"):
        Flow(JKOStep(SemiDiscreteSpace.path(1, dim=1), GeneralFreeEnergy(None, PorousMedium(2), n_nodes=1),
                     Grid(-1, 1, 8, 1)), schedule=lambda t: 1.0)


# ---- interaction kernels ----------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [1, 2])
def test_fft_convolution_equals_the_direct_sum(dim):
    K, n = 3, (12 if dim == 1 else 6)
    grid = Grid(-1, 2, n, dim)
    rng = np.random.default_rng(0)
    C1 = np.eye(K)
    C2 = rng.uniform(size=(K, K))
    C2 = C2 + C2.T
    W = Interaction([(gaussian_kernel(0.7, 2.0), C1), (quadratic_kernel(-0.3), C2)], K)
    rho = rng.uniform(size=(K, grid.n_points))
    x = grid.centers
    z = x[:, None, :] - x[None, :, :]
    k1 = 2.0 * np.exp(-np.sum(z * z, -1) / (2 * 0.49))
    k2 = -0.3 * np.sum(z * z, -1) / 2
    direct = np.stack([sum((C1[g, h] * k1 + C2[g, h] * k2) @ rho[h] for h in range(K)) for g in range(K)]) * grid.cell_volume
    assert np.allclose(W.convolve(rho, grid), direct, rtol=1e-12, atol=1e-12)


def test_particle_interaction_is_vectorised_and_matches_a_loop():
    rng = np.random.default_rng(1)
    K = 2
    C = np.array([[1.0, 0.5], [0.5, 2.0]])
    W = Interaction([(gaussian_kernel(0.8, 1.5), C)], K)
    X, G = rng.normal(size=(50, 2)), rng.integers(0, K, 50)
    loop_v = np.array([np.mean([C[G[k], G[j]] * 1.5 * np.exp(-np.sum((X[k] - X[j]) ** 2) / 1.28) for j in range(50)])
                       for k in range(50)])
    loop_g = np.array([np.mean([C[G[k], G[j]] * -1.5 / 0.64 * np.exp(-np.sum((X[k] - X[j]) ** 2) / 1.28) * (X[k] - X[j])
                                for j in range(50)], axis=0) for k in range(50)])
    assert np.allclose(W.particle_values(X, G, X, G), loop_v, rtol=1e-12)
    assert np.allclose(W.particle_grad(X, G, X, G), loop_g, rtol=1e-12, atol=1e-15)


def test_particle_solver_takes_the_same_energy_object():
    # quadratic attraction W = a |z|^2 / 2 within the node: the mean is kept and the OU variance of
    # each particle around the mean relaxes to T / (a_f + a_W) (closed form of the mean-field SDE)
    pot = QuadraticPotential(a=[1.0], c=[0.0], m=[[0.0]])
    E = GeneralFreeEnergy(pot, Entropy(0.5), interaction=quadratic_kernel(2.0))
    solver = ParticleSolver(SemiDiscreteSpace.path(1, dim=1), E, dt=0.02, diffusion="langevin")
    s = ParticleState.sample(600, [1.0], [[0.0]], 2.0, rng=3)
    solver.evolve(s, 2.0)
    var = float(np.var(s.x[:, 0]))
    assert var == pytest.approx(0.5 / 3.0, rel=0.15)  # 600 particles: ~6 % noise, ~3 % time-step bias
    assert isinstance(MeanFieldPotential(pot, E.interaction, s.x, s.g).grad(s.x[:3], s.g[:3]), np.ndarray)


# ---- bad input -----------------------------------------------------------------------------------
def test_bad_input_is_refused_up_front():
    grid = Grid(-1, 1, 10, 1)
    space = SemiDiscreteSpace.path(2, dim=1)
    for m in (1.0, 0.5, -2.0):
        with pytest.raises(ValueError, match=f"m = {m!r}"):
            PorousMedium(m)
    concave = CallableInternalEnergy(lambda r: -r**2, lambda r: -2 * r, lambda r: -2 * np.ones_like(r))
    with pytest.raises(ValueError, match="convex.*U''"):
        JKOStep(space, GeneralFreeEnergy(None, concave, n_nodes=2), grid)
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        Interaction([(quadratic_kernel(), np.eye(3))], 2)
    with pytest.raises(ValueError, match=r"\(2, 2, 18\)"):
        Interaction(np.zeros((2, 2, 18)), 2)
    bad_kernel = Kernel(lambda z: np.zeros((z.shape[0], 2)), name="wide")
    with pytest.raises(ValueError, match="returned shape"):
        JKOStep(space, GeneralFreeEnergy(None, PorousMedium(2), interaction=bad_kernel, n_nodes=2), grid)
    with pytest.raises(ValueError, match="lattice shape"):
        JKOStep(space, GeneralFreeEnergy(None, PorousMedium(2), interaction=np.zeros((2, 2, 11)), n_nodes=2), grid)
    with pytest.raises(ValueError, match="entropy"):
        JKOStep(space, GeneralFreeEnergy(None, PorousMedium(2), n_nodes=2), grid, theta="logmean_pi")
    J = JKOStep(space, GeneralFreeEnergy(None, PorousMedium(2), n_nodes=2), grid)
    rho = np.full((2, 10), 0.25)
    for tau in (0.0, -1.0):
        with pytest.raises(ValueError, match=f"tau.*{tau!r}"):
            J.step(rho, tau)


def test_unsolvable_step_raises_a_clear_error_with_the_residual():
    pot = QuadraticPotential(a=np.ones(2), c=[0.0, 1.0])
    J = JKOStep(SemiDiscreteSpace.path(2), pot, Grid(dim=0), 1.0, max_iter=1, tol=1e-15)
    with pytest.raises(JKOSolveError, match="residual"):
        J.step(np.array([[0.999], [0.001]]), 5.0)


@pytest.mark.parametrize("theta", ["logmean_pi", "arithmetic", "logmean"])
def test_concentrated_start_on_R1xG_is_solved(theta):
    # the report: a concentrated start raised a raw LinAlgError; now it is stepped, positive, mass kept
    space = SemiDiscreteSpace.path(3, dim=1)
    pot = QuadraticPotential(a=[1, 2, 1], c=[0, 0.3, 0.1], m=[[0.5], [-0.5], [0]])
    grid = Grid(-2, 2, 30, 1)
    J = JKOStep(space, pot, grid, 0.5, theta=theta)
    rho = np.zeros((3, 30))
    rho[0, 3] = 1 / grid.h
    r = J.evolve(rho, 1.0, 0.1)
    assert r.min() > 0 and abs(J.mass_drift) < 1e-13
    assert r[1:].sum() * grid.h > 0.1  # mass reached the other nodes
