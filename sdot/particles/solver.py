"""The configured particle solver (:class:`ParticleSolver`: ``step(state) -> state``, ``evolve``) and the
mean-field potential that carries an interaction energy W into the particle moves.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..backend import to_numpy
from ..potentials import Potential
from ..rates import RateLaw, get_rate_law
from ..space import SemiDiscreteSpace
from ..validation import nonnegative, one_of, positive
from .birth_death import DENSITIES, birth_death_step
from .diffusion import DIFFUSIONS
from .jumps import check_method, check_on_large_step
from .nonfinite import check_policy
from .splitting import lie_step, strang_step
from .state import ParticleState

__all__ = ["SPLITTINGS", "ParticleSolver", "MeanFieldPotential"]

SPLITTINGS = ("strang", "lie")


class _ZeroPotential(Potential):
    """f = 0 (an energy without drift)."""

    def __init__(self, n_nodes: int, dim: int):
        self.n_nodes, self.dim = int(n_nodes), int(dim)

    def __call__(self, x, g):
        return np.zeros(x.shape[0])

    def grad(self, x, g):
        return np.zeros(x.shape)


class MeanFieldPotential(Potential):
    """f(x, g) + (W * mu_N)_g(x) with the cloud mu_N = (1/N) sum_j delta_(X_j, G_j) frozen (a copy).

    Values and gradients are vectorised over (point, particle) pairs in chunks
    (:meth:`sdot.free_energy.Interaction.particle_grad`); no Python loop over particles.
    """

    def __init__(self, base: Potential, interaction: Any, x: Any, g: Any):
        self.base, self.interaction = base, interaction
        self.n_nodes, self.dim = base.n_nodes, base.dim
        self._x, self._g = np.array(to_numpy(x), dtype=float), np.array(to_numpy(g))

    def __call__(self, x, g):
        base = np.asarray(to_numpy(self.base(x, g)), dtype=float)
        return base + self.interaction.particle_values(x, g, self._x, self._g)

    def grad(self, x, g):
        base = np.asarray(to_numpy(self.base.grad(x, g)), dtype=float)
        return base + self.interaction.particle_grad(x, g, self._x, self._g)


class ParticleSolver:
    """A configured particle solver: ``step(state) -> state`` and ``evolve(state, t_final)``.

    Parameters
    ----------
    space, potential : the problem; ``potential`` may be a :class:`~sdot.free_energy.GeneralFreeEnergy`
        (U = entropy, its T is used; an interaction W enters through :class:`MeanFieldPotential`)
    T : float or callable t -> T(t)   temperature (schedules are evaluated at the step's start time)
    law : rate-law name or RateLaw (linear laws only); ``kappa`` scales it
    dt : step
    diffusion : ``"langevin" | "ou" | "underdamped" | "none"``
    splitting : ``"strang"`` (default) or ``"lie"``
    jump_method : ``"exact" | "single" | "explicit"``
    birth_death : None, or ``"kde"`` / ``"gibbs_conditional"`` to add a birth-death step of length dt
        after each step (a different, Fisher-Rao geometry — an accelerator, not the graph flow)
    nonfinite : ``"raise" | "freeze" | "reset"``
    """

    def __init__(self, space: SemiDiscreteSpace, potential: Potential, T: float | Callable[[float], float] = 1.0,
                 law: str | RateLaw = "glauber", dt: float = 0.01, *, diffusion: str = "langevin",
                 splitting: str = "strang", jump_method: str = "exact", kappa: float = 1.0,
                 birth_death: str | None = None, nonfinite: str = "raise", on_large_step: str = "substep",
                 gamma: float = 1.0, mass: float = 1.0):
        one_of("splitting", splitting, SPLITTINGS)
        one_of("diffusion", diffusion, DIFFUSIONS)
        check_method(jump_method)
        check_on_large_step(on_large_step)
        check_policy(nonfinite)
        one_of("birth_death", birth_death, (None,) + DENSITIES)
        self.interaction = None
        from ..free_energy import Entropy, GeneralFreeEnergy

        if isinstance(potential, GeneralFreeEnergy):
            # the same energy object as the grid/JKO solvers: drift f, U = T x entropy (Langevin noise),
            # interaction W through a mean-field potential frozen at the start of each step
            if not isinstance(potential.internal, Entropy):
                raise ValueError("particles realise U = T rho log rho only (Langevin noise), "
                                 f"got {potential.internal!r}")
            if callable(T) or (T != 1.0 and float(T) != potential.T):
                raise ValueError(f"T = {T!r} conflicts with the energy's entropy temperature {potential.T}")
            T = potential.T
            self.interaction = potential.interaction
            potential = potential.potential if potential.potential is not None else _ZeroPotential(
                potential.n_nodes, space.dim)
        self.space, self.potential, self.T, self.law = space, potential, T, get_rate_law(law, kappa)
        self.dt = positive("dt", dt)
        self.diffusion, self.splitting, self.jump_method = diffusion, splitting, jump_method
        self.birth_death, self.nonfinite, self.on_large_step = birth_death, nonfinite, on_large_step
        self.gamma, self.mass = nonnegative("gamma", gamma), positive("mass", mass)

    def temperature(self, t: float) -> float:
        return float(self.T(t)) if callable(self.T) else float(self.T)

    def step(self, state: ParticleState) -> ParticleState:
        T = self.temperature(state.t)
        fn = strang_step if self.splitting == "strang" else lie_step
        pot = self.potential
        if self.interaction is not None:
            pot = MeanFieldPotential(self.potential, self.interaction, state.x, state.g)
        fn(state, self.space, pot, self.law, T, self.dt, diffusion=self.diffusion,
           jump_method=self.jump_method, nonfinite=self.nonfinite, on_large_step=self.on_large_step,
           gamma=self.gamma, mass=self.mass)
        if self.birth_death is not None:
            info = state.info
            birth_death_step(state, self.space, self.potential, T, self.dt, density=self.birth_death,
                             nonfinite=self.nonfinite)
            state.t -= self.dt  # one step of time in all
            info.births, info.deaths = state.info.births, state.info.deaths
            if state.info.nonfinite.size:
                info.add_nonfinite(state.info.nonfinite, self.nonfinite)
            state.info = info
        return state

    def evolve(self, state: ParticleState, t_final: float,
               callback: Callable[[ParticleState], None] | None = None) -> ParticleState:
        """Step until ``state.t >= t_final`` (the last step is shortened to land on t_final)."""
        t_final = float(t_final)
        dt0 = self.dt
        try:
            while state.t < t_final - 1e-12 * max(1.0, abs(t_final)):
                self.dt = min(dt0, t_final - state.t)
                self.step(state)
                if callback is not None:
                    callback(state)
        finally:
            self.dt = dt0
        return state
