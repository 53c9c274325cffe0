"""The solver contract: one :class:`Problem`, a state, and ``step(state) -> state`` for every solver.

A problem is the flow on R^d x G without any numerical choice::

    d/dt rho = (transport in x at temperature T)  +  (jumps on G with the rate law ``law``),
    stationary state (reversible laws, T > 0):  pi_T(x, g) ∝ exp(-f(x, g) / T)

given by the space (the weighted graph G and d), the potential f(x, g), the temperature T (a number, a
schedule name, a callable ``T(t)`` / ``T(t, k)`` or a :class:`~sdot.schedules.Schedule`) and the rate law.
A grid (:class:`~sdot.grid.Grid`) is the discretisation the Eulerian solvers use (d = 0: one point).

Every solver (registered in :data:`sdot.solvers.SOLVERS`) follows :class:`Solver`:

* ``solver = factory(problem, dt=None, **options)``  (``dt`` may be set later: ``solver.dt = ...``);
* ``state = solver.init(initial)`` from a solver-specific initial condition (a density, a
  :class:`~sdot.particles.ParticleState`, ...) or, for every solver on d = 0, node masses (K,);
* ``state = solver.step(state)``: one step of length ``solver.dt`` at the temperature
  ``problem.temperature(state.t, state.n_steps)``; ``state.t`` and ``state.n_steps`` advance;
* ``solver.node_masses(state)`` (K,) and ``solver.diagnose(state)`` (a flat dict, for the driver).

States follow :class:`State` (a time ``t`` and a step count ``n_steps``): :class:`DensityState` (grid and
JKO solvers), :class:`HamiltonianState` (density and potential), :class:`~sdot.particles.ParticleState`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .grid import Grid
from .rates import RateLaw, get_rate_law
from .schedules import Schedule, get_schedule
from .space import SemiDiscreteSpace
from .validation import positive

__all__ = ["Problem", "State", "Solver", "DensityState", "HamiltonianState"]


@runtime_checkable
class State(Protocol):
    """What every solver state carries: the time ``t`` and the number of steps taken ``n_steps``."""

    t: float
    n_steps: int


@runtime_checkable
class Solver(Protocol):
    """``step(state) -> state`` of length ``dt`` on ``problem``; see the module docstring."""

    problem: "Problem"
    dt: float | None

    def init(self, initial: Any) -> State: ...

    def step(self, state: State) -> State: ...

    def node_masses(self, state: State) -> np.ndarray: ...

    def diagnose(self, state: State) -> dict: ...


@dataclass
class DensityState:
    """A density ``rho`` (K, M) on a grid at time ``t`` after ``n_steps`` steps; ``info`` of the last step."""

    rho: np.ndarray
    t: float = 0.0
    n_steps: int = 0
    info: dict = field(default_factory=dict)


@dataclass
class HamiltonianState:
    """Density ``rho`` and potential ``phi`` (both of the solver's state shape) at time ``t``."""

    rho: np.ndarray
    phi: np.ndarray
    t: float = 0.0
    n_steps: int = 0
    restarted: bool = False


class Problem:
    """The flow to solve: space, potential, temperature (or schedule) and rate law (see the module docstring).

    Parameters
    ----------
    space : SemiDiscreteSpace or array_like (K, K) weights (then d is the grid's, or 0)
    potential : Potential (f(x, g)), a :class:`~sdot.free_energy.GeneralFreeEnergy` (JKO, particles),
        or an array of K node energies (d = 0 solvers that take them: Hamiltonian, NAS rules)
    T : number, schedule name (with ``schedule_params``), callable, Schedule, or None (a general energy
        that carries its own temperature, or none)
    law : rate-law name or RateLaw; None lets each solver use its natural law (``glauber`` for the
        Eulerian and particle solvers, ``upwind`` for the NAS rules)
    grid : Grid used by the Eulerian solvers (default ``Grid(dim=0)`` when d = 0)
    kappa : graph-metric scale dividing every rate (> 0)
    """

    def __init__(self, space: Any, potential: Any, T: Any = 1.0, law: str | RateLaw | None = None,
                 grid: Grid | None = None, kappa: float = 1.0, schedule_params: dict | None = None):
        if grid is not None and not isinstance(grid, Grid):
            raise TypeError(f"grid must be a sdot.grid.Grid, got {type(grid).__name__}")
        if not isinstance(space, SemiDiscreteSpace):
            space = SemiDiscreteSpace(space, dim=grid.dim if grid is not None else getattr(potential, "dim", 0))
        if grid is None and space.dim == 0:
            grid = Grid(dim=0)
        if grid is not None and grid.dim != space.dim:
            raise ValueError(f"space has dimension d = {space.dim} but the grid has dim = {grid.dim}")
        self.space, self.potential, self.grid = space, potential, grid
        self.kappa = positive("kappa", kappa)
        self.law = None if law is None else get_rate_law(law)  # unknown names fail here, with did-you-mean
        self.T = T
        self.schedule: Schedule | None = None if T is None else get_schedule(T, **(schedule_params or {}))

    @property
    def n_nodes(self) -> int:
        return self.space.n_nodes

    @property
    def dim(self) -> int:
        return self.space.dim

    def temperature(self, t: float = 0.0, k: int = 0) -> float | None:
        """T at time t and step k (None when the problem has no temperature)."""
        return None if self.schedule is None else float(self.schedule(t, k))

    def law_or(self, default: str) -> RateLaw:
        """The problem's law (with kappa), or ``default`` when the problem leaves it to the solver."""
        return get_rate_law(self.law if self.law is not None else default, self.kappa)

    def node_energies(self) -> np.ndarray:
        """f(g) on d = 0: the potential at the single point (or the array of node energies), shape (K,)."""
        if self.dim != 0:
            raise ValueError(f"node energies need d = 0 (a pure graph problem); this problem has d = {self.dim}")
        pot = self.potential
        f = pot.all_nodes(np.zeros((1, 0))) if hasattr(pot, "all_nodes") else pot
        f = np.asarray(f, dtype=float).ravel()
        if f.shape != (self.n_nodes,):
            raise ValueError(f"node energies must have shape ({self.n_nodes},), got {f.shape}")
        return f

    def with_temperature(self, T: Any) -> "Problem":
        """The same problem at another temperature (or schedule)."""
        return Problem(self.space, self.potential, T, self.law, self.grid, self.kappa)

    def __repr__(self) -> str:
        law = self.law.name if self.law is not None else None
        return (f"Problem(K={self.n_nodes}, d={self.dim}, T={self.T!r}, law={law!r}, kappa={self.kappa}, "
                f"grid={self.grid!r})")
