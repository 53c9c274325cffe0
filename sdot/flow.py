"""The front door: ``sdot.solve(problem, method=...)`` and the driver ``Flow(...).run(initial, t_final, tau)``.

    >>> import numpy as np, sdot
    >>> problem = sdot.Problem(sdot.SemiDiscreteSpace.path(2), sdot.QuadraticPotential(a=[1, 1], c=[0.0, 0.5]), T=0.5)
    >>> traj = sdot.solve(problem, method="jko", initial=[0.5, 0.5], t_final=20.0, tau=0.5)
    >>> np.round(traj.series("m_g")[-1], 4).tolist()    # the Gibbs masses exp(-f / T) / Z
    [0.7311, 0.2689]

Every solver of :data:`sdot.solvers.SOLVERS` runs through the same loop: the driver advances a state in
``n = ceil(t_final / tau)`` equal steps ``dt = t_final / n`` (``solver.step``; the temperature of each step
comes from the problem's schedule at its start time t_k = k dt and index k), records the state and the
solver's diagnostics (for grid states: mass per node, F_T and its parts, dissipation, KL, chi-square and TV
to Gibbs — :mod:`sdot.diagnostics`) every ``record_every`` steps and calls ``callback(k, t, rho_or_state,
record_or_None)`` after every step (return ``False`` to stop early).

The call forms of earlier versions keep working: ``solve(space, potential, grid, T, rho0, t_final, tau,
method="grid" | "jko", law=..., **options)`` and ``Flow(grid_solver_or_jko_step, schedule)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .grid import GridSolver, n_steps
from .jko import JKOStep
from .problem import Problem, Solver
from .solvers import GridScheme, JKOScheme, make_solver
from .validation import positive_int

__all__ = ["Flow", "Trajectory", "solve"]


@dataclass
class Trajectory:
    """Recorded times (n,), densities (n, K, M) (None for particle states), one diagnostics dict per record,
    and the final state."""

    t: np.ndarray
    rho: np.ndarray | None
    diagnostics: list = field(default_factory=list)
    state: Any = None

    def series(self, key: str) -> np.ndarray:
        """One diagnostic over time, e.g. ``series("F")`` or ``series("m_g")`` -> (n, K)."""
        return np.array([d[key] for d in self.diagnostics])

    @property
    def final(self) -> Any:
        """The last recorded density (the final state when the solver has no density)."""
        return self.rho[-1] if self.rho is not None else self.state


def _as_solver(solver: Any, schedule: Any, method: str | None, options: dict) -> Solver:
    if isinstance(solver, Problem):
        problem = solver if schedule is None else solver.with_temperature(schedule)
        return make_solver(problem, method or "grid", **options)
    if method is not None or options:
        raise TypeError("method= and solver options go with a sdot.Problem: Flow(problem, method=..., **options)")
    if isinstance(solver, GridSolver):
        return GridScheme.wrap(solver, schedule)
    if isinstance(solver, JKOStep):
        return JKOScheme.wrap(solver, schedule)
    if isinstance(solver, Solver):
        if schedule is not None:
            solver.problem = solver.problem.with_temperature(schedule)
        return solver
    raise TypeError(f"solver must be a sdot.Problem, a registered solver (sdot.solvers), a GridSolver or a JKOStep, "
                    f"got {type(solver).__name__}")


class Flow:
    """Drive a solver with temperatures from its problem's schedule (or ``schedule``, which overrides it).

    ``Flow(problem, method="grid", **options)`` builds the registered solver; ``Flow(solver)`` drives an
    object following :class:`~sdot.problem.Solver`, a :class:`~sdot.grid.GridSolver` or a
    :class:`~sdot.jko.JKOStep` (default schedule: its own T, constant).
    """

    def __init__(self, solver: Any, schedule: Any = None, *, method: str | None = None, **options: Any):
        self.solver = solver
        self.scheme = _as_solver(solver, schedule, method, options)
        self.schedule = self.scheme.problem.schedule

    def run(self, initial: Any, t_final: float, tau: float, record_every: int = 1,
            callback: Callable[..., Any] | None = None, diagnostics: bool = True) -> Trajectory:
        """Advance ``initial`` to t_final in ``ceil(t_final / tau)`` equal steps; returns a :class:`Trajectory`."""
        if isinstance(record_every, bool) or not isinstance(record_every, (int, np.integer)):
            raise ValueError(f"record_every must be a positive integer, got {record_every!r}")
        record_every = positive_int("record_every", record_every)
        scheme = self.scheme
        state = scheme.init(initial)
        n = n_steps(float(t_final), float(tau))
        dt = float(t_final) / n
        scheme.dt = dt
        t0 = state.t
        ts, rs, ds = [], [], []

        def record(s):
            ts.append(s.t)
            if hasattr(s, "rho"):
                rs.append(np.array(s.rho, dtype=float, copy=True))
            if diagnostics:
                ds.append(scheme.diagnose(s))
                return ds[-1]
            return None

        record(state)
        for k in range(n):
            state = scheme.step(state)
            state.t = t0 + (k + 1) * dt  # the grid times themselves, without summed round-off
            rec = record(state) if ((k + 1) % record_every == 0 or k == n - 1) else None
            payload = state.rho if hasattr(state, "rho") else state
            if callback is not None and callback(k + 1, state.t, payload, rec) is False:
                break
        return Trajectory(np.array(ts), np.array(rs) if rs else None, ds, state)


def solve(*args: Any, method: str = "grid", **kwargs: Any) -> Trajectory:
    """The front door: solve a problem from an initial state to t_final.

    ``solve(problem, method="grid", initial=..., t_final=..., tau=..., record_every=1, callback=None,
    diagnostics=True, **options)``: ``method`` is a name in :data:`sdot.solvers.SOLVERS` and ``options`` go
    to its factory (e.g. ``time_method`` for ``grid``, ``theta`` for ``jko``, ``gamma`` for ``hamiltonian``,
    ``n_particles`` / ``seed`` for the particle solvers).

    The earlier form ``solve(space, potential, grid, T, rho0, t_final, tau, method="grid", law="glauber",
    record_every=1, **options)`` still works (``kappa`` and ``schedule_params`` go to the problem; ``T`` may be
    a number, a schedule name with ``schedule_params``, or a callable).
    """
    if (args and isinstance(args[0], Problem)) or "problem" in kwargs:
        return _solve_problem(*args, method=method, **kwargs)
    return _solve_legacy(*args, method=method, **kwargs)


def _solve_problem(problem: Problem, initial: Any = None, t_final: float | None = None, tau: float | None = None,
                   *, method: str = "grid", record_every: int = 1, callback: Callable[..., Any] | None = None,
                   diagnostics: bool = True, **options: Any) -> Trajectory:
    if initial is None or t_final is None or tau is None:
        missing = [k for k, v in (("initial", initial), ("t_final", t_final), ("tau", tau)) if v is None]
        raise TypeError(f"solve(problem, method=...) needs {', '.join(missing)}")
    return Flow(problem, method=method, **options).run(initial, t_final, tau, record_every=record_every,
                                                       callback=callback, diagnostics=diagnostics)


def _solve_legacy(space: Any, potential: Any, grid: Any, T: Any, rho0: Any, t_final: float, tau: float,
                  method: str = "grid", law: str = "glauber", record_every: int = 1, **options: Any) -> Trajectory:
    problem = Problem(space, potential, T, law if method != "jko" else None, grid, options.pop("kappa", 1.0),
                      options.pop("schedule_params", {}))  # the JKO step never read the law: its theta says it
    return Flow(problem, method=method, **options).run(rho0, t_final, tau, record_every=record_every)
