"""Every registered solver through the front door ``sdot.solve(problem, method=...)``, against closed forms.

The reference is never the code's own output: two-node relaxation ``m_0(t) - m_0* ∝ exp(-lambda t)`` with
``lambda = k(0 -> 1) + k(1 -> 0)`` (glauber rates ``T w exp((f_g - f_h) / 2T)``), its exact discrete
versions (implicit Euler: ``(1 + lambda dt)^-n``; Crank–Nicolson: ``((1 - lambda dt / 2) / (1 + lambda dt / 2))^n``),
the law of a particle (the two-state chain is exact in law for the exact jump method), the NASGD / NASAGD
expectations (``prod (1 - p_k)``), energy conservation of the undamped Hamiltonian flow, and the Gibbs masses.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import sdot
from sdot import Problem, QuadraticPotential, SemiDiscreteSpace
from sdot.grid import Grid
from sdot.solvers import SOLVERS, SolverBase, register_solver

W, T, F = 1.2, 0.5, np.array([0.0, 0.5])
K01, K10 = T * W * math.exp((F[0] - F[1]) / (2 * T)), T * W * math.exp((F[1] - F[0]) / (2 * T))
LAM, M0_STAR = K01 + K10, K10 / (K01 + K10)
START = np.array([0.2, 0.8])


def _problem(T=T, **kw) -> Problem:
    return Problem(SemiDiscreteSpace.path(2, weight=W), QuadraticPotential(a=[1.0, 1.0], c=F), T=T, **kw)


def _m0(traj) -> np.ndarray:
    return traj.series("m_g")[:, 0]


def test_grid_expm_is_the_exact_two_node_relaxation():
    traj = sdot.solve(_problem(), method="grid", initial=START, t_final=2.0, tau=0.25, time_method="expm")
    exact = M0_STAR + (START[0] - M0_STAR) * np.exp(-LAM * traj.t)
    np.testing.assert_allclose(_m0(traj), exact, atol=1e-12)


@pytest.mark.parametrize("time_method,factor", [("implicit", lambda x: 1 / (1 + x)),
                                                ("crank_nicolson", lambda x: (1 - x / 2) / (1 + x / 2))])
def test_grid_time_steppers_follow_their_discrete_closed_forms(time_method, factor):
    dt = 0.2
    traj = sdot.solve(_problem(), method="grid", initial=START, t_final=2.0, tau=dt, time_method=time_method)
    exact = M0_STAR + (START[0] - M0_STAR) * factor(LAM * dt) ** np.arange(traj.t.size)
    np.testing.assert_allclose(_m0(traj), exact, atol=1e-12)


def test_jko_relaxes_at_the_glauber_rate_to_first_order_and_stops_at_gibbs():
    errs = []
    for tau in (0.04, 0.02):
        traj = sdot.solve(_problem(law="glauber"), method="jko", initial=START, t_final=1.0, tau=tau)
        exact = M0_STAR + (START[0] - M0_STAR) * np.exp(-LAM * traj.t)
        errs.append(np.abs(_m0(traj) - exact).max())
    assert errs[1] < 0.6 * errs[0] and errs[1] < 5e-3, errs  # first order in tau
    long = sdot.solve(_problem(), method="jko", initial=START, t_final=40.0, tau=1.0)
    assert long.series("m_g")[-1] == pytest.approx([M0_STAR, 1 - M0_STAR], abs=1e-9)


def test_entropic_jko_with_the_glauber_cost_reaches_gibbs_as_eps_vanishes():
    # the stationary node mass is Gibbs + O(eps): the bias halves with eps, and the Richardson extrapolation
    # 2 b(eps) - b(2 eps) is the Gibbs mass itself
    bias = [sdot.solve(_problem(), method="entropic-jko", initial=START, t_final=20.0, tau=2.0, eps=eps,
                       tol=1e-9).series("m_g")[-1, 0] - M0_STAR for eps in (0.04, 0.02)]
    assert abs(bias[1]) < 0.1 * 0.02 and 1.9 < bias[0] / bias[1] < 2.1, bias
    assert abs(2 * bias[1] - bias[0]) < 1e-4, bias


def test_hamiltonian_conserves_energy_undamped_and_reaches_gibbs_damped():
    # (from START it would swing through near-vacuum: the inertial flow overshoots; start nearer Gibbs)
    drift = []
    for dt in (0.05, 0.025):  # dH/dt = -2 gamma K = 0; the implicit midpoint rule keeps it to O(dt^2)
        undamped = sdot.solve(_problem(), method="hamiltonian", initial=[0.6, 0.4], t_final=4.0, tau=dt)
        drift.append(np.ptp(undamped.series("H")) / abs(undamped.series("H")[0]))
    assert drift[0] < 1e-4 and 3.5 < drift[0] / drift[1] < 4.5, drift
    assert np.ptp(undamped.series("m_g")[:, 0]) > 0.05  # and it moves
    damped = sdot.solve(_problem(), method="hamiltonian", initial=START, t_final=40.0, tau=0.1, gamma=2.0)
    assert damped.series("m_g")[-1] == pytest.approx([M0_STAR, 1 - M0_STAR], abs=1e-6)
    assert np.all(np.diff(damped.series("H")) <= 1e-12)  # dH/dt = -2 gamma K <= 0


@pytest.mark.parametrize("method,options", [("particles", {}), ("strang", {}), ("lie", {}), ("jump", {}),
                                            ("particles", {"splitting": "lie"})])
def test_particles_have_the_law_of_the_two_state_chain(method, options):
    N = 20_000
    traj = sdot.solve(_problem(), method=method, initial=START, t_final=1.5, tau=0.1, n_particles=N, seed=3,
                      **options)
    exact = M0_STAR + (START[0] - M0_STAR) * np.exp(-LAM * traj.t)
    sd = np.sqrt(exact * (1 - exact) / N) + np.sqrt(START[0] * (1 - START[0]) / N)  # + the initial draw
    assert np.all(np.abs(_m0(traj) - exact) < 5 * sd), (_m0(traj), exact)
    assert traj.state.n_steps == 15 and traj.state.t == pytest.approx(1.5)


def test_nasgd_jumps_downhill_with_its_closed_form_probability():
    N, dt = 20_000, 0.1
    E = np.array([0.5, 0.0])
    p = Problem(SemiDiscreteSpace.path(2, weight=W), QuadraticPotential(a=[1, 1], c=E), T=0.0)
    traj = sdot.solve(p, method="nasgd", initial=[0.5, 0.5], t_final=3.0, tau=dt, n_particles=N, seed=1)
    exact = 0.5 * (1 - dt * W * (E[0] - E[1])) ** np.arange(traj.t.size)  # node 1 never goes uphill
    assert np.all(np.abs(_m0(traj) - exact) < 5 * np.sqrt(0.25 / N) + 1e-12), (_m0(traj), exact)


def test_nasagd_accelerates_as_its_velocity_potential_grows():
    # restart at step 0 (S = 0), then phi_0 - phi_1 = -k dt E_0 / c_p after k phi updates: a jump
    # probability p_k = dt c w k dt E_0 / c_p growing linearly in k (S < 0: no restart while both nodes hold mass)
    N, dt, c_p = 20_000, 0.1, 2.0
    E = np.array([0.5, 0.0])
    p = Problem(SemiDiscreteSpace.path(2, weight=W), QuadraticPotential(a=[1, 1], c=E), T=0.0)
    traj = sdot.solve(p, method="nasagd", initial=[0.5, 0.5], t_final=2.0, tau=dt, n_particles=N, seed=2, c_p=c_p)
    k = np.arange(1, traj.t.size)
    exact = 0.5 * np.concatenate([[1.0], np.cumprod(1 - dt * W * k * dt * E[0] / c_p)])
    assert np.all(np.abs(_m0(traj) - exact) < 5 * np.sqrt(0.25 / N) + 1e-12), (_m0(traj), exact)


def test_a_schedule_drives_every_kind_of_state():
    seen = []
    sched = lambda t, k: 1.0 / (1 + k)  # noqa: E731
    sdot.solve(_problem(T=sched), method="grid", initial=START, t_final=0.3, tau=0.1,
               callback=lambda k, t, r, rec: seen.append(rec["T"]))
    assert seen == pytest.approx([1.0, 0.5, 1 / 3])
    traj = sdot.solve(_problem(T=sched), method="hamiltonian", initial=START, t_final=0.3, tau=0.1)
    assert traj.series("T").tolist() == pytest.approx([1.0, 0.5, 1 / 3, 0.25])  # a record shows the next step's T


def test_old_call_forms_and_the_new_one_agree():
    space, pot = SemiDiscreteSpace.path(3), QuadraticPotential(a=[1, 1, 1], c=[0, 0.5, 0.2])
    rho0 = np.array([[0.7], [0.2], [0.1]])
    old = sdot.solve(space, pot, Grid(dim=0), 0.5, rho0, 1.0, 0.1, kappa=2.0)
    new = sdot.solve(Problem(space, pot, T=0.5, kappa=2.0), method="grid", initial=rho0, t_final=1.0, tau=0.1)
    np.testing.assert_array_equal(old.rho, new.rho)
    flow = sdot.Flow(Problem(space, pot, T=0.5), method="jko").run(rho0, 1.0, 0.1)
    np.testing.assert_array_equal(flow.rho, sdot.solve(space, pot, Grid(dim=0), 0.5, rho0, 1.0, 0.1,
                                                       method="jko").rho)


def test_a_user_solver_is_one_registration():
    class ExactTwoState(SolverBase):
        """The closed form itself, as a solver (what a plugin author writes)."""

        def init(self, initial):
            return sdot.DensityState(np.asarray(initial, dtype=float).reshape(2, 1))

        def step(self, state):
            m0 = M0_STAR + (state.rho[0, 0] - M0_STAR) * math.exp(-LAM * self.dt)
            return sdot.DensityState(np.array([[m0], [1 - m0]]), state.t + self.dt, state.n_steps + 1)

        def node_masses(self, state):
            return state.rho[:, 0]

    register_solver("t-exact-two-state", ExactTwoState)
    try:
        assert "t-exact-two-state" in sdot.SOLVERS
        traj = sdot.solve(_problem(), method="t-exact-two-state", initial=START, t_final=1.0, tau=0.5)
        assert traj.series("m_g")[-1, 0] == pytest.approx(M0_STAR + (START[0] - M0_STAR) * math.exp(-LAM))
        with pytest.raises(ValueError, match="already registered"):
            register_solver("t-exact-two-state", lambda problem, dt=None: None)
    finally:
        SOLVERS.unregister("t-exact-two-state")


def test_bad_input_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match=r"unknown solver 'jk' \(did you mean 'jko'\?\)"):
        sdot.solve(_problem(), method="jk", initial=START, t_final=1.0, tau=0.1)
    with pytest.raises(ValueError, match="T = 0 rules"):
        sdot.solve(_problem(), method="nasgd", initial=START, t_final=1.0, tau=0.1)
    with pytest.raises(ValueError, match="upwind"):
        sdot.solve(_problem(T=0.0, law="glauber"), method="nasgd", initial=START, t_final=1.0, tau=0.1)
    with pytest.raises(ValueError, match="realises the laws"):
        sdot.solve(_problem(law="upwind"), method="jko", initial=START, t_final=1.0, tau=0.1)
    with pytest.raises(ValueError, match="kappa must be a finite number > 0"):
        _problem(kappa=0.0)
    with pytest.raises(ValueError, match="unknown rate law 'glaber'"):
        _problem(law="glaber")
    with pytest.raises(TypeError, match="needs t_final, tau"):
        sdot.solve(_problem(), method="grid", initial=START)
    with pytest.raises(TypeError, match="without"):
        register_solver("t-not-a-solver", lambda problem, dt=None: object())
        try:
            sdot.make_solver(_problem(), "t-not-a-solver")
        finally:
            SOLVERS.unregister("t-not-a-solver")
    with pytest.raises(TypeError, match="callable"):
        register_solver("t-bad", 3)
    with pytest.raises(ValueError, match="total mass"):
        sdot.solve(_problem(), method="grid", initial=[0.5, 0.6], t_final=1.0, tau=0.1)
    with pytest.raises(ValueError, match="tau"):
        sdot.solve(_problem(), method="particles", initial=START, t_final=1.0, tau=-1.0)


def test_hamiltonian_front_door_steps_as_its_own_run_including_restarts():
    space, pot = SemiDiscreteSpace.path(3), QuadraticPotential(a=[1, 1, 1], c=[0, 0.5, 0.2])
    ref = sdot.DampedHamiltonian(space, pot, 0.5, gamma=0.1, restart="gradient").run([0.2, 0.3, 0.5], 3.0, 0.1)
    traj = sdot.solve(Problem(space, pot, T=0.5), method="hamiltonian", initial=[0.2, 0.3, 0.5], t_final=3.0,
                      tau=0.1, gamma=0.1, restart="gradient")
    assert ref.restarts  # the rule fired
    np.testing.assert_array_equal(traj.rho, ref.rho)
    assert [d["t"] for d in traj.diagnostics if d["restarted"]] == pytest.approx(ref.restarts)
