"""A small driver: ``Flow(solver, schedule).run(rho0, t_final, tau, ...)`` and the ``solve`` front door.

The driver steps a grid-state solver (:class:`~sdot.grid.GridSolver` or :class:`~sdot.jko.JKOStep`),
updates the temperature from a schedule before every step (re-assembling the generator when T
changes; for a JKO step the temperature of its entropy), records densities and diagnostics (mass per node, F_T and its parts, dissipation, KL,
chi-square and TV to Gibbs — see :mod:`sdot.diagnostics`) every ``record_every`` steps, and calls
``callback(k, t, rho, record_or_None)`` after every step (return ``False`` to stop early).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .diagnostics import diagnose, diagnose_jko
from .grid import Grid, GridSolver, check_density, n_steps
from .jko import JKOStep
from .schedules import Constant, get_schedule

__all__ = ["Flow", "Trajectory", "solve"]


@dataclass
class Trajectory:
    """Recorded times (n,), densities (n, K, M), and one diagnostics dict per record."""

    t: np.ndarray
    rho: np.ndarray
    diagnostics: list = field(default_factory=list)

    def series(self, key: str) -> np.ndarray:
        """One diagnostic over time, e.g. ``series("F")`` or ``series("m_g")`` -> (n, K)."""
        return np.array([d[key] for d in self.diagnostics])

    @property
    def final(self) -> np.ndarray:
        return self.rho[-1]


class Flow:
    """Drive ``solver`` with temperatures from ``schedule`` (default: the solver's T, constant)."""

    def __init__(self, solver: GridSolver | JKOStep, schedule: Any = None):
        if not isinstance(solver, (GridSolver, JKOStep)):
            raise TypeError(f"solver must be a GridSolver or a JKOStep, got {type(solver).__name__}")
        self.solver = solver
        if schedule is None:
            if solver.T is None:
                self.schedule = None  # a JKO step without entropy: no temperature
            else:
                self.schedule = Constant(solver.T)
        else:
            self.schedule = get_schedule(schedule)
            if isinstance(solver, JKOStep) and solver.T is None:
                raise ValueError(f"a temperature schedule needs U = entropy; the JKO step's energy is {solver.energy!r}")

    def _grid_solver(self) -> GridSolver:
        return self.solver._gs if isinstance(self.solver, JKOStep) else self.solver

    def _set_temperature(self, t: float, k: int) -> None:
        if self.schedule is None:
            return
        T = self.schedule(t, k)
        if isinstance(self.solver, JKOStep):
            if T <= 0:
                raise ValueError(f"schedule gave T = {T!r} at step {k}; the JKO step needs T > 0")
        self.solver.set_temperature(T)

    def run(self, rho0: Any, t_final: float, tau: float, record_every: int = 1,
            callback: Callable[..., Any] | None = None, diagnostics: bool = True) -> Trajectory:
        """Advance rho0 to t_final in ``ceil(t_final / tau)`` equal steps; returns a :class:`Trajectory`."""
        if record_every < 1:
            raise ValueError(f"record_every must be a positive integer, got {record_every!r}")
        gs = self._grid_solver()
        rho = check_density(rho0, (gs.K, gs.M), gs.grid.cell_volume, name="rho0")
        n = n_steps(float(t_final), float(tau))
        dt = float(t_final) / n
        ts, rs, ds = [], [], []
        jko = isinstance(self.solver, JKOStep)

        def record(t, r):
            ts.append(t), rs.append(r.copy())
            if diagnostics:
                ds.append(diagnose_jko(self.solver, r, t) if jko else diagnose(gs, r, t))
                return ds[-1]
            return None

        self._set_temperature(0.0, 0)
        record(0.0, rho)
        for k in range(n):
            t = k * dt
            self._set_temperature(t, k)
            if jko:
                # no renormalisation: the mass drift of the optimiser shows in the diagnostics
                rho = self.solver.step(rho, dt).rho
            else:
                rho = self.solver.step(rho, dt, check=False)
            rec = record((k + 1) * dt, rho) if ((k + 1) % record_every == 0 or k == n - 1) else None
            if callback is not None and callback(k + 1, (k + 1) * dt, rho, rec) is False:
                break
        return Trajectory(np.array(ts), np.array(rs), ds)


def solve(space: Any, potential: Any, grid: Grid, T: Any, rho0: Any, t_final: float, tau: float,
          method: str = "grid", law: str = "glauber", record_every: int = 1, **options: Any) -> Trajectory:
    """Front door: solve the flow from rho0 to t_final.

    ``method="grid"``: :class:`GridSolver` (``options``: time_method, kappa, spatial);
    ``method="jko"``: iterated dynamic JKO steps (``options``: theta, kappa, scheme). ``T`` may be a
    number, a schedule name with ``schedule_params``, or a callable (both methods).
    """
    schedule = get_schedule(T, **options.pop("schedule_params", {}))
    T0 = schedule(0.0, 0)
    if method == "grid":
        solver = GridSolver(space, potential, grid, T0, law=law, method=options.pop("time_method", "implicit"),
                            **options)
    elif method == "jko":
        solver = JKOStep(space, potential, grid, T0, **options)
    else:
        raise ValueError(f"unknown method {method!r}; expected 'grid' or 'jko'")
    return Flow(solver, schedule).run(rho0, t_final, tau, record_every=record_every)
