"""Particle solver: closed forms (OU moments, jump-chain laws, binomial upwind law), invariances,
exact save/restore, the torch path, and every bad input (spec semi-discrete-flow.md 7.2, 8)."""

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm
from scipy.stats import binom, chisquare

from sdot import QuadraticPotential, SemiDiscreteSpace
from sdot.potentials import CallablePotential
from sdot.particles import (NonFiniteError, ParticleSolver, ParticleState, birth_death_step, gibbs_node_masses,
                            jump_rates, jump_step, langevin_step, lie_step, neighbour_table, node_log_partition,
                            ou_step, strang_step, underdamped_step)


def _z(emp, expect, se):
    return np.abs(np.asarray(emp) - np.asarray(expect)) / np.asarray(se)


# ---------------------------------------------------------------------------------------------
# moves in x: closed forms
# ---------------------------------------------------------------------------------------------
def test_ou_moments_match_closed_form():
    """Spec 8.4: m(t) = m0 e^{-at}, s(t) = T/a + (s0 - T/a) e^{-2at}, at any step size."""
    a, T, N = 1.5, 0.7, 20000
    f = QuadraticPotential([a], [0.0], [[0.0, 0.0]])
    m0, s0 = np.array([1.0, -2.0]), 0.09
    for dt, n in [(0.1, 10), (1.0, 1)]:  # the exact transition: one big step = ten small ones
        s = ParticleState(m0 + math.sqrt(s0) * np.random.default_rng(0).standard_normal((N, 2)),
                          np.zeros(N, dtype=int), rng=1)
        for _ in range(n):
            ou_step(s, f, T, dt)
        t = dt * n
        mt = m0 * math.exp(-a * t)
        st = T / a + (s0 - T / a) * math.exp(-2 * a * t)
        assert s.t == pytest.approx(t)
        assert np.all(_z(s.x.mean(0), mt, math.sqrt(st / N)) < 4)
        assert np.all(_z(s.x.var(0), st, st * math.sqrt(2 / (N - 1))) < 4)


def test_euler_maruyama_follows_its_discrete_recursion_and_the_ou_limit():
    """EM on a quadratic: mean (1 - a dt)^n m0, variance s <- (1 - a dt)^2 s + 2 T dt (exact in law);
    its O(dt) distance to the continuous OU moments."""
    a, T, N, dt, n = 2.0, 0.5, 20000, 0.05, 20
    f = QuadraticPotential([a], [0.0], [[0.0]])
    s = ParticleState(np.full((N, 1), 1.5), np.zeros(N, dtype=int), rng=2)
    mean, var = 1.5, 0.0
    for _ in range(n):
        langevin_step(s, f, T, dt)
        mean, var = (1 - a * dt) * mean, (1 - a * dt) ** 2 * var + 2 * T * dt
    assert _z(s.x.mean(), mean, math.sqrt(var / N)) < 4
    assert _z(s.x.var(), var, var * math.sqrt(2 / (N - 1))) < 4
    t = n * dt
    var_ou = T / a * (1 - math.exp(-2 * a * t))
    assert abs(var - var_ou) < 2 * a * dt * var_ou  # first order in dt


def test_langevin_at_zero_temperature_is_gradient_descent():
    f = QuadraticPotential([1.0, 3.0], [0.0, 0.0], [[1.0], [-1.0]])
    x0, g = np.array([[0.0], [0.0]]), np.array([0, 1])
    s = langevin_step(ParticleState(x0, g, rng=0), f, 0.0, 0.1)
    np.testing.assert_allclose(s.x, x0 - 0.1 * f.grad(x0, g))


def test_underdamped_baoab_samples_the_gibbs_law():
    """BAOAB on a harmonic well: x ~ N(0, T/a) (exact in x for harmonic f), p ~ N(0, T) to O(dt^2)."""
    a, T, N = 2.0, 0.5, 20000
    f = QuadraticPotential([a], [0.0], [[0.0]])
    s = ParticleState(np.zeros((N, 1)), np.zeros(N, dtype=int), rng=3).with_momenta(T)
    for _ in range(150):
        underdamped_step(s, f, T, 0.1, gamma=1.0)
    vx = T / a
    assert _z(s.x.mean(), 0.0, math.sqrt(vx / N)) < 4
    assert _z(s.x.var(), vx, vx * math.sqrt(2 / N)) < 4
    assert abs(s.p.var() - T) < 0.03 * T


# ---------------------------------------------------------------------------------------------
# jumps
# ---------------------------------------------------------------------------------------------
def _d0_chain(law="glauber", T=0.5):
    space = SemiDiscreteSpace.complete(3)
    f = QuadraticPotential([1.0, 1.0, 1.0], [0.0, 0.4, -0.3])  # d = 0: f(g) = c_g
    k = lambda g, h: get_rate(law, f.c[g], f.c[h], T)  # noqa: E731
    Q = np.array([[k(g, h) if g != h else 0.0 for h in range(3)] for g in range(3)])
    Q -= np.diag(Q.sum(1))
    return space, f, Q


def get_rate(law, fg, fh, T):
    from sdot import get_rate_law
    return float(get_rate_law(law).rate(np.array(fg), np.array(fh), 1.0, T))


@pytest.mark.parametrize("law", ["glauber", "metropolis"])
def test_exact_jump_method_samples_the_fixed_x_chain_for_any_dt(law):
    """One step of length dt (dt * lambda ~ 3, many jumps per particle) has the law expm(dt Q)."""
    space, f, Q = _d0_chain(law)
    N, dt = 20000, 4.0
    s = ParticleState.from_labels(np.zeros(N, dtype=int), rng=4)
    jump_step(s, space, f, law, 0.5, dt, method="exact")
    p = expm(dt * Q)[0]
    assert s.info.jump_rounds > 2
    assert np.all(_z(s.node_fractions(3), p, np.sqrt(p * (1 - p) / N)) < 4)


def test_single_jump_method_law():
    """method='single': stay with prob e^{-lambda dt}, else to h with prob (1 - e^{-lambda dt}) k_h / lambda."""
    space, f, Q = _d0_chain()
    N, dt = 20000, 0.8
    s = ParticleState.from_labels(np.zeros(N, dtype=int), rng=5)
    jump_step(s, space, f, "glauber", 0.5, dt, method="single")
    lam = -Q[0, 0]
    p = np.r_[math.exp(-lam * dt), (1 - math.exp(-lam * dt)) * Q[0, 1:] / lam]
    assert s.info.jump_rounds == 1
    assert np.all(_z(s.node_fractions(3), p, np.sqrt(p * (1 - p) / N)) < 4)


@pytest.mark.parametrize("method", ["explicit", "single"])
def test_two_node_upwind_binomial_law(method):
    """Spec 8.3: f1 > f2, upwind at T = 0: nobody jumps 2 -> 1 and the count on node 1 after n
    explicit steps is Binomial(N1(0), (1 - dt w (f1 - f2))^n) (exp(-w (f1-f2) n dt) for 'single')."""
    space = SemiDiscreteSpace.path(2, weight=1.5)
    f = QuadraticPotential([1.0, 1.0], [1.0, 0.2])
    R, N0, dt, n = 400, 300, 0.05, 8
    gap = 1.5 * 0.8
    g0 = np.zeros(R * N0, dtype=int)
    g0[::7] = 1  # some particles start on the low node: they must stay there
    s = ParticleState.from_labels(g0, rng=6)
    low = g0 == 1
    for _ in range(n):
        jump_step(s, space, f, "upwind", 0.0, dt, method=method)
        assert np.all(s.g[low] == 1)
    q = (1 - dt * gap) ** n if method == "explicit" else math.exp(-gap * dt * n)
    start = np.bincount(np.arange(R * N0) // N0, weights=(~low).astype(float), minlength=R).astype(int)
    counts = np.bincount(np.arange(R * N0) // N0, weights=(s.g == 0).astype(float), minlength=R).astype(int)
    # each replicate: Binomial(start_r, q); standardise and pool
    mean, var = start * q, start * q * (1 - q)
    zs = (counts - mean) / np.sqrt(var)
    assert abs(zs.mean()) < 4 / math.sqrt(R)
    assert abs(zs.var() - 1) < 4 * math.sqrt(2 / R)
    # goodness of fit of the most common start size against its binomial pmf
    n1 = np.bincount(start).argmax()
    sel = counts[start == n1]
    if sel.size > 50:
        edges = binom.ppf(np.linspace(0, 1, 6), n1, q)
        edges[0], edges[-1] = -1, n1
        obs = np.histogram(sel, edges + 0.5)[0]  # (a, b] on integers, as binom.cdf differences
        exp_p = np.diff(binom.cdf(edges, n1, q))
        assert chisquare(obs, exp_p / exp_p.sum() * obs.sum()).pvalue > 1e-3


def test_jump_step_evaluates_f_only_at_neighbours():
    """On a path graph a particle's node and its neighbours are all that f is asked for."""
    K = 6
    space = SemiDiscreteSpace.path(K, dim=1)
    calls = []

    def f(x, g):
        home = np.rint(x[:, 0]).astype(int)
        assert np.all(np.abs(g - home) <= 1), "f evaluated at a non-neighbour node"
        calls.append(len(g))
        return 0.3 * g.astype(float)

    pot = CallablePotential(f, K, 1, grad=lambda x, g: np.zeros_like(x))
    g = np.repeat(np.arange(K), 50)
    s = ParticleState(g[:, None].astype(float), g, rng=7)
    jump_step(s, space, pot, "glauber", 1.0, 0.1, method="single")
    table = neighbour_table(space)
    assert len(calls) == 1 + table.max_degree and table.max_degree == 2


def test_jump_rates_and_neighbour_table():
    space = SemiDiscreteSpace.path(4, weight=2.0, dim=1)
    f = QuadraticPotential([1.0, 2.0, 1.0, 0.5], [0.0, 0.1, 0.2, 0.3], [[0.0], [1.0], [-1.0], [0.5]])
    x, g = np.array([[0.2], [0.7], [-0.4]]), np.array([0, 1, 3])
    nbr, rates = jump_rates(x, g, space, f, "metropolis", 0.4)
    for i in range(3):
        for j in range(nbr.shape[0]):
            h = nbr[j, i]
            if h == g[i]:
                assert rates[j, i] == 0.0  # padding
            else:
                fg, fh = f(x[i:i + 1], g[i:i + 1])[0], f(x[i:i + 1], np.array([h]))[0]
                assert rates[j, i] == pytest.approx(0.4 * 2.0 * min(1.0, math.exp((fg - fh) / 0.4)))


def test_explicit_jump_refuses_or_substeps_large_steps():
    space, f, Q = _d0_chain()
    s = ParticleState.from_labels(np.zeros(1000, dtype=int), rng=8)
    lam = -Q.diagonal().min()
    with pytest.raises(ValueError, match="dt \\* max_rate"):
        jump_step(s, space, f, "glauber", 0.5, 2.0 / lam, method="explicit", on_large_step="raise")
    with pytest.warns(RuntimeWarning, match="sub-steps"):
        jump_step(s, space, f, "glauber", 0.5, 2.0 / lam, method="explicit")
    assert s.info.substeps >= 2


# ---------------------------------------------------------------------------------------------
# non-finite policy
# ---------------------------------------------------------------------------------------------
def _nan_potential(K=2):
    """Quadratic for x < 2, NaN beyond (values and gradients)."""
    def f(x, g):
        v = 0.5 * (x * x).sum(1) + 0.1 * g
        return np.where(x[:, 0] < 2, v, np.nan)

    def grad(x, g):
        return np.where(x[:, :1] < 2, x, np.nan)

    return CallablePotential(f, K, 1, grad=grad)


def _mixed_state(seed=9):
    x = np.r_[np.linspace(-1, 1, 20), [3.0, 4.0]][:, None]
    g = np.r_[np.zeros(10, int), np.ones(10, int), [0, 1]]
    return ParticleState(x, g, rng=seed)


@pytest.mark.parametrize("step", ["langevin", "jump", "strang"])
def test_nonfinite_raise_names_particles_and_leaves_state(step):
    space, pot = SemiDiscreteSpace.path(2, dim=1), _nan_potential()
    s = _mixed_state()
    x0, g0 = s.x.copy(), s.g.copy()
    with pytest.raises(NonFiniteError, match="2 particle") as err:
        if step == "langevin":
            langevin_step(s, pot, 0.5, 0.01)
        elif step == "jump":
            jump_step(s, space, pot, "glauber", 0.5, 0.01)
        else:
            strang_step(s, space, pot, "glauber", 0.5, 0.01)
    assert sorted(err.value.indices.tolist()) == [20, 21]
    np.testing.assert_array_equal(s.x, x0)
    np.testing.assert_array_equal(s.g, g0)


@pytest.mark.parametrize("step", ["langevin", "jump"])
def test_nonfinite_freeze_keeps_affected_particles_and_reports_them(step):
    space, pot = SemiDiscreteSpace.path(2, dim=1), _nan_potential()
    s = _mixed_state()
    x0, g0 = s.x.copy(), s.g.copy()
    if step == "langevin":
        langevin_step(s, pot, 0.5, 0.01, nonfinite="freeze")
        assert np.all(s.x[:20] != x0[:20])
    else:
        jump_step(s, space, pot, "glauber", 0.5, 5.0, nonfinite="freeze")
        assert np.any(s.g[:20] != g0[:20])
    np.testing.assert_array_equal(s.info.nonfinite, [20, 21])
    assert s.info.policy == "freeze"
    assert s.info.nonfinite_mask(22).sum() == 2
    np.testing.assert_array_equal(s.x[20:], x0[20:])
    np.testing.assert_array_equal(s.g[20:], g0[20:])
    assert np.all(np.isfinite(s.x))


@pytest.mark.parametrize("step", ["langevin", "jump", "strang"])
def test_nonfinite_reset_replaces_by_healthy_copies(step):
    space, pot = SemiDiscreteSpace.path(2, dim=1), _nan_potential()
    s = _mixed_state()
    if step == "langevin":
        langevin_step(s, pot, 0.5, 0.01, nonfinite="reset")
    elif step == "jump":
        jump_step(s, space, pot, "glauber", 0.5, 0.01, nonfinite="reset")
    else:
        strang_step(s, space, pot, "glauber", 0.5, 0.01, nonfinite="reset")
    assert set(s.info.nonfinite.tolist()) >= {20, 21}
    assert np.all(np.isfinite(s.x)) and np.all(s.x < 2)
    for i in (20, 21) if step != "strang" else ():  # each is an exact copy of some other particle
        same = np.flatnonzero((s.x[:20, 0] == s.x[i, 0]) & (s.g[:20] == s.g[i]))
        assert same.size >= 1


def test_infinite_barrier_at_a_neighbour_is_a_zero_rate_not_an_error():
    space = SemiDiscreteSpace.path(2, dim=1)
    pot = CallablePotential(lambda x, g: np.where(g == 1, np.inf, 0.5 * x[:, 0] ** 2), 2, 1,
                            grad=lambda x, g: x.copy())
    s = ParticleState(np.zeros((500, 1)), np.zeros(500, dtype=int), rng=10)
    jump_step(s, space, pot, "glauber", 0.5, 10.0)
    assert np.all(s.g == 0) and s.info.nonfinite.size == 0


# ---------------------------------------------------------------------------------------------
# state, persistence, validation at the edge
# ---------------------------------------------------------------------------------------------
def _problem():
    space = SemiDiscreteSpace.complete(3, dim=1)
    f = QuadraticPotential([1.0, 2.5, 0.6], [0.0, 0.4, 0.2], [[-0.4], [0.2], [0.5]])
    return space, f


def test_state_dict_restores_exactly():
    space, f = _problem()
    s = ParticleState.sample(3000, [0.5, 0.3, 0.2], [0.0], 0.7, rng=11).with_momenta(0.5)
    strang_step(s, space, f, "glauber", 0.5, 0.05)
    saved = s.state_dict()
    twin = ParticleState.from_state_dict(saved)
    for st in (s, twin):
        for _ in range(3):
            strang_step(st, space, f, "metropolis", 0.5, 0.05, diffusion="underdamped")
    np.testing.assert_array_equal(s.x, twin.x)
    np.testing.assert_array_equal(s.g, twin.g)
    np.testing.assert_array_equal(s.p, twin.p)
    assert s.t == twin.t and s.n_steps == twin.n_steps == 4
    other = ParticleState.from_labels(np.zeros(3, dtype=int)).load_state_dict(saved)
    assert other.n_particles == 3000 and other.t == pytest.approx(0.05)


def test_state_owns_its_arrays_and_copy_is_independent():
    space, f = _problem()
    x, g = np.zeros((100, 1)), np.zeros(100, dtype=int)
    s = ParticleState(x, g, rng=12)
    c = s.copy()
    strang_step(s, space, f, "glauber", 0.5, 0.1)
    assert np.all(x == 0) and np.all(g == 0)  # the caller's arrays are untouched
    assert np.all(c.x == 0)
    strang_step(c, space, f, "glauber", 0.5, 0.1)
    np.testing.assert_array_equal(c.x, s.x)  # the copied stream continues identically


@pytest.mark.parametrize("kwargs, err, match", [
    ({"x": np.zeros((4, 1), dtype=int)}, TypeError, "float32 or float64"),
    ({"g": np.zeros(4)}, TypeError, "integer node labels"),
    ({"g": np.zeros(5, dtype=int)}, ValueError, "shape \\(4,\\)"),
    ({"x": np.zeros(4)}, ValueError, "shape \\(N, d\\)"),
    ({"g": -np.ones(4, dtype=int)}, ValueError, ">= 0"),
    ({"x": np.array([[0.0], [np.nan], [0.0], [0.0]])}, ValueError, "not finite"),
    ({"p": np.zeros((4, 2))}, ValueError, "p must have the shape"),
])
def test_particle_state_validates_inputs(kwargs, err, match):
    args = {"x": np.zeros((4, 1)), "g": np.zeros(4, dtype=int)}
    args.update(kwargs)
    with pytest.raises(err, match=match):
        ParticleState(**args)


def test_steps_validate_inputs():
    space, f = _problem()
    s = ParticleState(np.zeros((10, 1)), np.zeros(10, dtype=int), rng=0)
    with pytest.raises(ValueError, match="dt must be a finite number > 0"):
        jump_step(s, space, f, "glauber", 0.5, 0.0)
    with pytest.raises(ValueError, match="dt must be a finite number > 0"):
        langevin_step(s, f, 0.5, float("nan"))
    with pytest.raises(ValueError, match="T must be a finite number >= 0"):
        langevin_step(s, f, -1.0, 0.1)
    with pytest.raises(ValueError, match="T > 0"):
        jump_step(s, space, f, "glauber", 0.0, 0.1)
    with pytest.raises(TypeError, match="nonlinear"):
        jump_step(s, space, f, "logmean", 0.5, 0.1)
    with pytest.raises(ValueError, match="unknown rate law"):
        jump_step(s, space, f, "nope", 0.5, 0.1)
    with pytest.raises(ValueError, match="jump method"):
        jump_step(s, space, f, "glauber", 0.5, 0.1, method="euler")
    with pytest.raises(ValueError, match="nonfinite must be one of"):
        langevin_step(s, f, 0.5, 0.1, nonfinite="ignore")
    with pytest.raises(ValueError, match="the space has d = 2"):
        jump_step(s, SemiDiscreteSpace.complete(3, dim=2), f, "glauber", 0.5, 0.1)
    with pytest.raises(ValueError, match="the potential has 2 nodes"):
        jump_step(s, space, QuadraticPotential([1.0, 1.0], [0.0, 0.0], [[0.0], [0.0]]), "glauber", 0.5, 0.1)
    bad = ParticleState(np.zeros((10, 1)), np.full(10, 3), rng=0)
    with pytest.raises(ValueError, match="node label 3 out of range"):
        jump_step(bad, space, f, "glauber", 0.5, 0.1)
    with pytest.raises(TypeError, match="QuadraticPotential"):
        ou_step(s, CallablePotential(lambda x, g: x[:, 0], 3, 1), 0.5, 0.1)
    with pytest.raises(ValueError, match="needs momenta"):
        underdamped_step(s, f, 0.5, 0.1)
    with pytest.raises(TypeError, match="ParticleState"):
        jump_step(np.zeros((10, 1)), space, f, "glauber", 0.5, 0.1)
    wrong = CallablePotential(lambda x, g: np.zeros(len(g) + 1), 3, 1, grad=lambda x, g: x)
    with pytest.raises(ValueError, match="shape \\(11,\\), expected \\(10,\\)"):
        jump_step(s, space, wrong, "glauber", 0.5, 0.1)
    with pytest.raises(ValueError, match="splitting"):
        ParticleSolver(space, f, 0.5, splitting="yoshida")


# ---------------------------------------------------------------------------------------------
# solver object, schedules, Gibbs closed form
# ---------------------------------------------------------------------------------------------
def test_solver_evolve_lands_on_t_final_and_accepts_a_schedule():
    space, f = _problem()
    seen = []
    solver = ParticleSolver(space, f, T=lambda t: 0.5 / (1 + t), dt=0.3, diffusion="ou")
    s = ParticleState.sample(500, [1, 0, 0], [0.0], 0.5, rng=13)
    solver.evolve(s, 1.0, callback=lambda st: seen.append(st.t))
    assert s.t == pytest.approx(1.0) and len(seen) == 4 and seen[-1] == pytest.approx(1.0)
    assert solver.dt == 0.3


def test_node_log_partition_matches_quadrature():
    from scipy.integrate import quad

    f = QuadraticPotential([1.0, 2.5, 0.6], [0.0, 0.4, 0.2], [[-0.4], [0.2], [0.5]])
    T = 0.7
    num = [math.log(quad(lambda y: math.exp(-float(f(np.array([[y]]), np.array([k]))[0]) / T), -30, 30)[0])
           for k in range(3)]
    np.testing.assert_allclose(node_log_partition(f, T), num, rtol=1e-8)
    p = gibbs_node_masses(f, T)
    assert p.sum() == pytest.approx(1.0)


def test_lie_step_advances_once():
    space, f = _problem()
    s = ParticleState.sample(100, [1, 0, 0], [0.0], 0.5, rng=14)
    lie_step(s, space, f, "glauber", 0.5, 0.1)
    assert s.t == pytest.approx(0.1) and s.n_steps == 1


def test_float32_state_stays_float32():
    space, f = _problem()
    s = ParticleState.sample(2000, [0.3, 0.3, 0.4], [0.0], 0.5, rng=15, dtype=np.float32)
    for diffusion in ("langevin", "ou"):
        strang_step(s, space, f, "glauber", 0.5, 0.05, diffusion=diffusion)
    assert s.x.dtype == np.float32 and s.g.dtype == np.int64


# ---------------------------------------------------------------------------------------------
# birth-death (Fisher-Rao): a different geometry
# ---------------------------------------------------------------------------------------------
def test_birth_death_follows_its_mean_field_on_nodes():
    """d = 0: d/dt m = -m (log(m/pi) - sum m log(m/pi)), particles within 4 sigma + O(dt)."""
    space = SemiDiscreteSpace.complete(3)
    f = QuadraticPotential([1.0, 1.0, 1.0], [0.0, 0.4, -0.3])
    T, N, dt, n = 0.5, 20000, 0.02, 25
    pi = gibbs_node_masses(f, T)
    m0 = np.array([0.7, 0.2, 0.1])
    s = ParticleState.from_labels(np.random.default_rng(0).choice(3, N, p=m0), rng=16)
    m_start = s.node_fractions(3)
    for _ in range(n):
        birth_death_step(s, space, f, T, dt)

    def rhs(t, m):
        L = np.log(m / pi)
        return -m * (L - m @ L)

    m_ode = solve_ivp(rhs, (0, n * dt), m_start, rtol=1e-10, atol=1e-12).y[:, -1]
    se = np.sqrt(m_ode * (1 - m_ode) / N)
    assert np.all(np.abs(s.node_fractions(3) - m_ode) < 4 * se + 0.01)
    assert np.abs(s.node_fractions(3) - pi).sum() < np.abs(m_start - pi).sum()


def test_birth_death_kde_moves_toward_gibbs_in_d1():
    space, f = _problem()
    T = 0.5
    pi = gibbs_node_masses(f, T)
    s = ParticleState.sample(1500, [0.8, 0.1, 0.1], [2.0], 0.3, rng=17)
    tv0 = np.abs(s.node_fractions(3) - pi).sum()
    solver = ParticleSolver(space, f, T, dt=0.2, diffusion="ou", birth_death="kde")
    for _ in range(5):
        solver.step(s)
    assert s.info.births + s.info.deaths > 0
    assert np.abs(s.node_fractions(3) - pi).sum() < tv0
    assert s.t == pytest.approx(1.0)
    with pytest.raises(ValueError, match="d <= 2"):
        birth_death_step(ParticleState(np.zeros((5, 3)), np.zeros(5, dtype=int)),
                         SemiDiscreteSpace.complete(3, dim=3),
                         QuadraticPotential([1.0] * 3, [0.0] * 3, np.zeros((3, 3))), T, 0.1)


# ---------------------------------------------------------------------------------------------
# torch: the same code path
# ---------------------------------------------------------------------------------------------
def _devices():
    torch = pytest.importorskip("torch")
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture
def torch_one_thread():
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: threading overhead dominates on a busy 2-core machine
    yield torch
    torch.set_num_threads(n)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_torch_path_matches_numpy_statistically(device, torch_one_thread):
    torch = torch_one_thread
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    space, f = _problem()
    T, N = 0.5, 6000
    base = ParticleState.sample(N, [1.0, 0.0, 0.0], [0.0], 0.5, rng=18)
    ts = ParticleState(torch.tensor(base.x, device=device), torch.tensor(base.g, device=device), rng=19)
    ns = base.copy()
    for st in (ts, ns):
        for k in range(20):
            strang_step(st, space, f, "glauber" if k % 2 else "metropolis", T, 0.05,
                        diffusion="ou" if k < 10 else "langevin")
    assert ts.x.device.type == device and ts.x.dtype == torch.float64 and ts.g.dtype == torch.int64
    mt, mn = ts.node_fractions(3), ns.node_fractions(3)
    se = np.sqrt(2 * mn * (1 - mn) / N)
    assert np.all(np.abs(mt - mn) < 4 * se + 1e-3)
    # exact restore on torch too
    twin = ParticleState.from_state_dict(ts.state_dict())
    for st in (ts, twin):
        jump_step(st, space, f, "glauber", T, 0.5)
    assert torch.equal(ts.g, twin.g)


def test_torch_path_float32_momenta_birth_death_and_policies(torch_one_thread):
    torch = torch_one_thread
    space, f = _problem()
    s = ParticleState(torch.zeros(500, 1, dtype=torch.float32), torch.zeros(500, dtype=torch.int64), rng=20)
    s.with_momenta(0.5)
    strang_step(s, space, f, "glauber", 0.5, 0.05, diffusion="underdamped")
    jump_step(s, space, f, "metropolis", 0.5, 0.05, method="explicit")
    birth_death_step(s, space, f, 0.5, 0.05, density="gibbs_conditional")
    assert s.x.dtype == torch.float32 and s.p.dtype == torch.float32
    pot = CallablePotential(lambda x, g: torch.where(x[:, 0] < 2, 0.5 * x[:, 0] ** 2, torch.nan), 3, 1,
                            grad=lambda x, g: torch.where(x < 2, x, torch.nan))
    x = torch.zeros(10, 1, dtype=torch.float64)
    x[3] = 5.0
    st = ParticleState(x, torch.zeros(10, dtype=torch.int64), rng=21)
    with pytest.raises(NonFiniteError):
        langevin_step(st, pot, 0.5, 0.1)
    langevin_step(st, pot, 0.5, 0.1, nonfinite="freeze")
    assert st.info.nonfinite.tolist() == [3] and float(st.x[3, 0]) == 5.0
    with pytest.raises(TypeError, match="numpy arrays or all torch tensors"):
        ParticleState(torch.zeros(3, 1), np.zeros(3, dtype=int))
    with pytest.raises(TypeError, match="numpy particles"):
        ParticleState(np.zeros((3, 1)), np.zeros(3, dtype=int), rng=torch.Generator())


def test_nonfinite_met_after_a_jump_undoes_the_step_under_raise():
    """Exact chain: a particle jumps into a node whose f is NaN at its x (found in a later round)."""
    space = SemiDiscreteSpace.path(3, dim=1)
    pot = CallablePotential(lambda x, g: np.where(g == 2, np.nan, np.where(g == 1, -5.0, 0.0)) + 0 * x[:, 0], 3, 1,
                            grad=lambda x, g: np.zeros_like(x))
    s = ParticleState(np.zeros((200, 1)), np.zeros(200, dtype=int), rng=22)
    with pytest.raises(NonFiniteError):
        jump_step(s, space, pot, "glauber", 1.0, 5.0)
    assert np.all(s.g == 0)
    jump_step(s, space, pot, "glauber", 1.0, 5.0, nonfinite="freeze")
    assert np.all(s.g == 1) and s.info.nonfinite.size == 200  # reached node 1, frozen there
