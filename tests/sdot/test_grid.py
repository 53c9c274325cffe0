"""Grid solver against closed forms (spec 8.1-8.7), invariances and conservation (spec 7.1)."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.integrate import solve_ivp

from sdot import QuadraticPotential, SemiDiscreteSpace, logmean
from sdot.grid import Grid, GridSolver, StabilityError, logmean_derivatives

POINT = Grid(dim=0)


def two_nodes(f1, f2, w=1.0):
    return SemiDiscreteSpace.path(2, weight=w), QuadraticPotential(a=[1, 1], c=[f1, f2])


# ---- Grid -----------------------------------------------------------------------------------------
def test_grid_geometry():
    g = Grid(lower=-2, upper=2, n_cells=8, dim=2)
    assert g.n_points == 64 and g.h == 0.5 and g.cell_volume == 0.25
    assert g.centers.shape == (64, 2) and np.allclose(g.centers[1], [-1.75, -1.25])
    a, b = g.faces()
    assert a.size == 2 * 8 * 7 and np.all(np.abs(g.centers[a] - g.centers[b]).sum(1) == pytest.approx(0.5))
    p = Grid(dim=0)
    assert p.n_points == 1 and p.cell_volume == 1.0 and p.centers.shape == (1, 0)
    with pytest.raises(ValueError, match="dim must be 0, 1 or 2"):
        Grid(dim=3)
    with pytest.raises(ValueError, match="lower < upper"):
        Grid(1, -1, 4, 1)


# ---- generator sanity and detailed balance ------------------------------------------------------------
@pytest.mark.parametrize("law", ["glauber", "metropolis"])
@pytest.mark.parametrize("dim", [1, 2])
def test_generator_is_reversible_markov(law, dim):
    rng = np.random.default_rng(0)
    K = 4
    space = SemiDiscreteSpace.random_regular(K, 3, seed=1, dim=dim, weight=0.7)
    pot = QuadraticPotential(a=rng.uniform(0.5, 2, K), c=rng.uniform(0, 1, K), m=rng.uniform(-1, 1, (K, dim)))
    s = GridSolver(space, pot, Grid(-3, 3, 12, dim), T=0.6, law=law)
    Q = s.Q.tocoo()
    off = Q.row != Q.col
    assert np.all(Q.data[off] >= 0)
    assert np.allclose(np.asarray(s.Q.sum(axis=1)).ravel(), 0, atol=1e-12 * abs(Q.data).max())
    pi = s.gibbs().ravel()
    flux = sp.diags(pi) @ s.Q  # pi_s Q_ss' symmetric
    assert abs(flux - flux.T).max() <= 1e-13 * abs(flux).max()


# ---- 8.1 two nodes, linear laws: exact exponential -----------------------------------------------------
@pytest.mark.parametrize("law", ["glauber", "metropolis"])
def test_two_node_relaxation_exact(law):
    T, w, f1, f2, r0 = 0.7, 1.3, 0.2, 1.0, 0.9
    space, pot = two_nodes(f1, f2, w)
    s = GridSolver(space, pot, POINT, T, law=law)
    if law == "glauber":
        k12, k21 = T * w * np.exp((f1 - f2) / (2 * T)), T * w * np.exp((f2 - f1) / (2 * T))
    else:
        k12, k21 = T * w * min(1, np.exp((f1 - f2) / T)), T * w * min(1, np.exp((f2 - f1) / T))
    pi1 = np.exp(-f1 / T) / (np.exp(-f1 / T) + np.exp(-f2 / T))
    t = 1.7
    exact = pi1 + (r0 - pi1) * np.exp(-(k12 + k21) * t)
    rho0 = np.array([[r0], [1 - r0]])
    assert s.evolve(rho0, t, 0.1, method="expm")[0, 0] == pytest.approx(exact, abs=1e-13)
    assert s.gibbs()[0, 0] == pytest.approx(pi1, abs=1e-15)
    # implicit Euler: first order; Crank-Nicolson: second order
    e_ie = [abs(s.evolve(rho0, t, tau)[0, 0] - exact) for tau in (0.1, 0.05, 0.025)]
    e_cn = [abs(s.evolve(rho0, t, tau, method="crank_nicolson")[0, 0] - exact) for tau in (0.1, 0.05, 0.025)]
    assert np.allclose(np.log2(np.divide(e_ie[:-1], e_ie[1:])), 1, atol=0.1)
    assert np.allclose(np.log2(np.divide(e_cn[:-1], e_cn[1:])), 2, atol=0.1)


# ---- 8.2 plain log-mean two nodes ------------------------------------------------------------------------
def test_logmean_two_nodes_vs_solve_ivp():
    T, w, f1, f2 = 0.5, 1.2, 0.0, 0.8
    space, pot = two_nodes(f1, f2, w)
    rhs = lambda t, y: [w * (T * (1 - 2 * y[0]) + logmean(y[0], 1 - y[0]) * (f2 - f1))]
    t_final = 1.5
    ref = solve_ivp(rhs, (0, t_final), [0.15], rtol=1e-12, atol=1e-14).y[0, -1]
    rho0 = np.array([[0.15], [0.85]])
    imp = GridSolver(space, pot, POINT, T, law="logmean")
    errs = [abs(imp.evolve(rho0, t_final, tau)[0, 0] - ref) for tau in (0.02, 0.01, 0.005)]
    assert errs[-1] < 2e-3
    assert np.allclose(np.log2(np.divide(errs[:-1], errs[1:])), 1, atol=0.15)
    exp_ = GridSolver(space, pot, POINT, T, law="logmean", method="explicit")
    assert abs(exp_.evolve(rho0, t_final, 0.002)[0, 0] - ref) < 2e-3
    # equilibrium rho_1 / rho_2 = exp(-(f1 - f2) / T) (log-mean identity)
    eq = imp.evolve(rho0, 60.0, 0.5)
    assert eq[0, 0] / eq[1, 0] == pytest.approx(np.exp(-(f1 - f2) / T), rel=1e-10)
    assert np.allclose(eq, imp.gibbs(), atol=1e-10)


def test_logmean_equal_potentials_closed_form():
    T, w = 0.8, 0.6
    space, pot = two_nodes(0.3, 0.3, w)
    s = GridSolver(space, pot, POINT, T, law="logmean", method="explicit")
    rho0 = np.array([[0.9], [0.1]])
    t = 0.7
    got = s.evolve(rho0, t, 5e-4)[0, 0]
    assert got == pytest.approx(0.5 + 0.4 * np.exp(-2 * T * w * t), abs=5e-5)


def test_logmean_derivatives_match_finite_differences():
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0.01, 3, 50), rng.uniform(0.01, 3, 50)
    b[:10] = a[:10] * (1 + rng.uniform(-1e-5, 1e-5, 10))  # series branch
    da, db = logmean_derivatives(a, b)
    eps = 1e-6
    fa = (logmean(a * (1 + eps), b) - logmean(a * (1 - eps), b)) / (2 * eps * a)
    fb = (logmean(a, b * (1 + eps)) - logmean(a, b * (1 - eps))) / (2 * eps * b)
    assert np.allclose(da, fa, rtol=1e-5, atol=1e-7) and np.allclose(db, fb, rtol=1e-5, atol=1e-7)


# ---- 8.3 upwind T = 0 ----------------------------------------------------------------------------------------
def test_upwind_two_node_decay():
    f1, f2, w = 1.5, 0.5, 0.8
    space, pot = two_nodes(f1, f2, w)
    s = GridSolver(space, pot, POINT, T=0.0, law="upwind")
    rho0 = np.array([[0.7], [0.3]])
    t = 2.0
    assert s.evolve(rho0, t, 0.1, method="expm")[0, 0] == pytest.approx(0.7 * np.exp(-w * (f1 - f2) * t), abs=1e-13)
    assert s.Q[1, 0] == 0.0  # nothing ever flows uphill 2 -> 1


# ---- 8.7 cycle and complete graph mode rates ----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["cycle", "complete"])
def test_graph_mode_rates(kind):
    K, T, w, t = 7, 0.9, 1.4, 0.6
    space = getattr(SemiDiscreteSpace, kind)(K, weight=w)
    s = GridSolver(space, QuadraticPotential(a=np.ones(K), c=np.full(K, 0.25)), POINT, T)
    for j in range(1, K):
        mode = np.cos(2 * np.pi * j * np.arange(K) / K)
        rho0 = (1 / K + 0.05 * mode)[:, None]
        rate = 2 * T * w * (1 - np.cos(2 * np.pi * j / K)) if kind == "cycle" else K * T * w
        out = s.evolve(rho0, t, 0.1, method="expm")
        assert np.allclose(out[:, 0], 1 / K + 0.05 * mode * np.exp(-rate * t), atol=1e-13)


# ---- 8.4 Ornstein-Uhlenbeck on the d = 1 grid ----------------------------------------------------------------
def _ou_error(n, a=1.3, T=0.4, m0=0.8, s0=0.15, t=0.5, L=4.0):
    space = SemiDiscreteSpace(np.zeros((1, 1)), dim=1)
    pot = QuadraticPotential(a=[a], c=[0.0], m=[[0.0]])
    grid = Grid(-L, L, n, 1)
    x = grid.centers[:, 0]
    # cell averages of the Gaussian N(m0, s0)
    from scipy.stats import norm
    edges = np.linspace(-L, L, n + 1)
    rho0 = np.diff(norm.cdf(edges, m0, np.sqrt(s0)))[None, :] / grid.h
    rho0 /= rho0.sum() * grid.h
    s = GridSolver(space, pot, grid, T)
    rho = s.evolve(rho0, t, 0.1, method="expm")[0]
    mean = np.sum(x * rho) * grid.h
    var = np.sum((x - mean) ** 2 * rho) * grid.h - grid.h**2 / 12  # cell-average (Sheppard) correction
    m_ex = m0 * np.exp(-a * t)
    v_ex = T / a + (s0 - T / a) * np.exp(-2 * a * t)
    return abs(mean - m_ex), abs(var - v_ex)


def test_ornstein_uhlenbeck_moments_second_order_in_h():
    e = np.array([_ou_error(n) for n in (40, 80, 160)])
    assert e[-1].max() < 5e-4
    slopes = np.log2(e[:-1] / e[1:])
    assert np.all(slopes > 1.8), slopes


def test_ornstein_uhlenbeck_time_error_first_order():
    a, T, t = 1.0, 0.5, 0.5
    space = SemiDiscreteSpace(np.zeros((1, 1)), dim=1)
    pot = QuadraticPotential(a=[a], c=[0.0], m=[[0.0]])
    grid = Grid(-4, 4, 100, 1)
    s = GridSolver(space, pot, grid, T)
    rho0 = np.exp(-((grid.centers[:, 0] - 1) ** 2) / 0.2)[None, :]
    rho0 /= rho0.sum() * grid.h
    ref = s.evolve(rho0, t, 1, method="expm")
    errs = [np.abs(s.evolve(rho0, t, tau) - ref).max() for tau in (0.05, 0.025, 0.0125)]
    assert np.allclose(np.log2(np.divide(errs[:-1], errs[1:])), 1, atol=0.1)


# ---- 8.5 product case ------------------------------------------------------------------------------------------
def test_product_case_node_masses_and_spectral_gap():
    a, T, w = 1.0, 0.5, 0.3
    c = np.array([0.0, 0.4])
    space = SemiDiscreteSpace.path(2, weight=w, dim=1)
    pot = QuadraticPotential(a=[a, a], c=c, m=[[0.0], [0.0]])
    grid = Grid(-5, 5, 100, 1)
    s = GridSolver(space, pot, grid, T)
    x = grid.centers[:, 0]
    g0 = np.exp(-((x - 1.0) ** 2) / (2 * 0.1))
    g0 /= g0.sum() * grid.h
    p0 = np.array([0.9, 0.1])
    rho = p0[:, None] * g0[None, :]
    k12, k21 = T * w * np.exp((c[0] - c[1]) / (2 * T)), T * w * np.exp((c[1] - c[0]) / (2 * T))
    gap = k12 + k21
    pi1 = 1 / (1 + np.exp(-(c[1] - c[0]) / T))
    pi = s.gibbs()
    times = np.linspace(0, 16, 17)
    chi = []
    from sdot.diagnostics import chi_square_to_gibbs
    for k, t in enumerate(times):
        if k:
            rho = s.evolve(rho, times[k] - times[k - 1], 1, method="expm")
        m = s.node_masses(rho)
        assert m[0] == pytest.approx(pi1 + (p0[0] - pi1) * np.exp(-gap * t), abs=1e-12)
        chi.append(chi_square_to_gibbs(rho, pi, grid))
    chi = np.array(chi)
    lam = min(a, gap)
    assert np.all(chi <= chi[0] * np.exp(-lam * times) * (1 + 1e-6))
    slope = np.polyfit(times[10:], np.log(chi[10:]), 1)[0]
    assert -slope == pytest.approx(lam, rel=0.02)


# ---- 8.6 flat versus sharp minima -------------------------------------------------------------------------------
def test_flat_versus_sharp_stationary_masses():
    from sdot.energy import FreeEnergy

    T = 0.5
    a, c = np.array([8.0, 0.5]), np.array([0.0, 0.3])  # node 1: flatter but higher
    pot = QuadraticPotential(a=a, c=c, m=[[-0.5], [0.5]])
    space = SemiDiscreteSpace.path(2, weight=3.0, dim=1)
    grid = Grid(-6, 6, 240, 1)
    s = GridSolver(space, pot, grid, T)
    p = FreeEnergy(pot, T).gibbs_node_masses()
    assert p[1] > p[0]  # the flat minimum wins at this temperature
    assert np.allclose(s.node_masses(s.gibbs()), p, atol=1e-10)
    uniform = np.full((2, grid.n_points), 1 / (2 * 12.0))
    rho = s.evolve(uniform, 60.0, 1.0)
    assert np.allclose(s.node_masses(rho), p, atol=1e-6)


# ---- invariance, conservation, monotonicity ---------------------------------------------------------------------
def _problem(dim, law="glauber", K=3, T=0.5, n=16):
    rng = np.random.default_rng(7)
    space = SemiDiscreteSpace.complete(K, dim=dim)
    pot = QuadraticPotential(a=rng.uniform(0.5, 2, K), c=rng.uniform(0, 1, K),
                             m=rng.uniform(-1, 1, (K, dim)) if dim else None, dim=dim)
    return GridSolver(space, pot, Grid(-2, 2, n, dim), T, law=law)


@pytest.mark.parametrize("dim", [0, 1, 2])
@pytest.mark.parametrize("law", ["glauber", "metropolis"])
@pytest.mark.parametrize("method", ["implicit", "crank_nicolson", "expm", "split"])
def test_gibbs_is_invariant(dim, law, method):
    s = _problem(dim, law)
    pi = s.gibbs()
    out = s.evolve(pi, 2.0, 0.25, method=method)
    assert np.abs(out - pi).max() <= 1e-12 * pi.max()


def test_gibbs_is_invariant_logmean():
    s = _problem(1, "logmean")
    pi = s.gibbs()
    assert np.abs(s.evolve(pi, 1.0, 0.1) - pi).max() <= 1e-12 * pi.max()


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("law, T", [("glauber", 0.5), ("metropolis", 0.5), ("upwind", 0.0), ("logmean", 0.5)])
def test_mass_conserved_and_free_energy_non_increasing(dim, law, T):
    from sdot.energy import FreeEnergy

    s = _problem(dim, law, T=T, n=12 if dim == 2 else 24)
    rng = np.random.default_rng(1)
    rho = rng.uniform(0.2, 1, (s.K, s.M))
    rho /= rho.sum() * s.grid.cell_volume
    E = FreeEnergy(s.potential, T)
    F_prev = E(rho, s.grid)
    for _ in range(30):
        rho = s.step(rho, 0.05)
        assert abs(rho.sum() * s.grid.cell_volume - 1) < 1e-12
        F = E(rho, s.grid)
        assert F <= F_prev + 1e-13 * max(1, abs(F_prev))
        F_prev = F
    assert rho.min() >= 0


@pytest.mark.parametrize("law", ["glauber", "logmean", "upwind"])
def test_dissipation_is_minus_dF_dt(law):
    # the metric form of D equals -<dF/drho, d rho/dt> h^d (discrete summation by parts)
    T = 0.0 if law == "upwind" else 0.6
    s = _problem(1, law, T=T, n=20)
    rng = np.random.default_rng(2)
    rho = rng.uniform(0.2, 1, (s.K, s.M))
    rho /= rho.sum() * s.grid.cell_volume
    chain = -np.sum(s.first_variation(rho) * s.rhs(rho)) * s.grid.cell_volume
    D = s.dissipation(rho)
    assert D >= 0 and D == pytest.approx(chain, rel=1e-10)


def test_energy_dissipation_identity():
    from sdot.diagnostics import energy_dissipation_residual
    from sdot.energy import FreeEnergy

    s = _problem(1, "glauber", n=24)
    E = FreeEnergy(s.potential, s.T)
    x = s.grid.centers[:, 0]
    rho0 = s.gibbs() * (1 + 0.8 * np.sin(2 * x))[None, :] * np.array([1.0, 0.5, 0.2])[:, None]
    rho0 /= rho0.sum() * s.grid.h
    res = []
    for tau in (0.01, 0.005, 0.0025):
        ts, Fs, Ds, rho = [0.0], [E(rho0, s.grid)], [s.dissipation(rho0)], rho0
        for k in range(int(round(0.5 / tau))):
            rho = s.step(rho, tau)
            ts.append((k + 1) * tau), Fs.append(E(rho, s.grid)), Ds.append(s.dissipation(rho))
        r = energy_dissipation_residual(ts, Fs, Ds)
        res.append(np.abs(r).max())
        assert np.abs(r).max() < 0.05 * abs(Fs[0] - Fs[-1])
    assert np.allclose(np.log2(np.divide(res[:-1], res[1:])), 1, atol=0.15)  # O(tau)


# ---- bad input -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("W, match", [([[0, -1], [-1, 0]], "negative"), ([[0, 1], [2, 0]], "symmetric"),
                                      ([[0, np.nan], [np.nan, 0]], "not finite")])
def test_bad_weights_through_solver(W, match):
    pot = QuadraticPotential(a=[1, 1], c=[0, 1])
    with pytest.raises(ValueError, match=match):
        GridSolver(W, pot, POINT, T=1.0)


def test_disconnected_graph_has_no_unique_gibbs():
    W = sp.block_diag([np.array([[0, 1], [1, 0]])] * 2)
    s = GridSolver(W, QuadraticPotential(a=np.ones(4), c=np.arange(4.0)), POINT, T=1.0)
    with pytest.raises(ValueError, match="2 connected components"):
        s.gibbs()


def test_bad_densities_are_refused():
    s = _problem(1)
    good = s.gibbs()
    with pytest.raises(ValueError, match=r"rho\[0, 3\] = -0.1 is negative"):
        bad = good.copy()
        bad[0, 3] = -0.1
        s.step(bad, 0.1)
    with pytest.raises(ValueError, match="total mass 2.0.*expected 1"):
        s.step(2 * good, 0.1)
    with pytest.raises(ValueError, match="not finite"):
        bad = good.copy()
        bad[1, 1] = np.nan
        s.evolve(bad, 1.0, 0.1)
    with pytest.raises(ValueError, match="shape"):
        s.step(good[:2], 0.1)


@pytest.mark.parametrize("law", ["glauber", "metropolis", "logmean"])
@pytest.mark.parametrize("T", [0.0, -1.0])
def test_temperature_must_be_positive(law, T):
    pot = QuadraticPotential(a=[1, 1], c=[0, 1])
    with pytest.raises(ValueError, match="T > 0"):
        GridSolver(SemiDiscreteSpace.path(2), pot, POINT, T=T, law=law)


def test_negative_temperature_refused_for_upwind():
    with pytest.raises(ValueError, match=">= 0"):
        GridSolver(SemiDiscreteSpace.path(2), QuadraticPotential(a=[1, 1], c=[0, 1]), POINT, T=-0.5, law="upwind")


@pytest.mark.parametrize("law", ["glauber", "logmean"])
def test_explicit_step_beyond_stability_bound(law):
    s = _problem(1, law, n=20)
    pi = s.gibbs()
    bound = 1 / s.max_rate(pi)
    s.step(pi, 0.9 * bound, method="explicit")
    with pytest.raises(StabilityError, match="exceeds the stability bound"):
        s.step(pi, 1.5 * bound, method="explicit")


def test_unknown_method_and_law():
    with pytest.raises(ValueError, match="unknown method"):
        _problem(1).step(_problem(1).gibbs(), 0.1, method="rk4")
    with pytest.raises(ValueError, match="nonlinear law"):
        GridSolver(SemiDiscreteSpace.path(2), QuadraticPotential(a=[1, 1], c=[0, 1]), POINT, T=1, law="logmean",
                   method="expm")


@pytest.mark.parametrize("dim", [1, 2])
def test_split_step_conserves_and_converges_first_order(dim):
    from sdot.energy import FreeEnergy

    s = _problem(dim, n=12 if dim == 2 else 24)
    rng = np.random.default_rng(5)
    rho0 = rng.uniform(0.2, 1, (s.K, s.M))
    rho0 /= rho0.sum() * s.grid.cell_volume
    E = FreeEnergy(s.potential, s.T)
    rho, F_prev = rho0, E(rho0, s.grid)
    for _ in range(10):
        rho = s.step(rho, 0.05, method="split")
        assert abs(rho.sum() * s.grid.cell_volume - 1) < 1e-12 and rho.min() >= 0
        assert E(rho, s.grid) <= F_prev + 1e-13
        F_prev = E(rho, s.grid)
    ref = s.evolve(rho0, 0.5, 1, method="expm")
    errs = [np.abs(s.evolve(rho0, 0.5, tau, method="split") - ref).max() for tau in (0.05, 0.025, 0.0125)]
    assert np.allclose(np.log2(np.divide(errs[:-1], errs[1:])), 1, atol=0.15)
