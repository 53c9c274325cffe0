"""Operator splitting of one step of the flow: a move in x at fixed node and jumps on G at fixed x.

Strang (diffusion dt/2, jumps dt, diffusion dt/2; O(dt^2) splitting bias) and Lie (diffusion dt, jumps dt;
O(dt)). Composite steps advance ``state.t`` once and count one step in ``state.n_steps``.
"""

from __future__ import annotations

from ..potentials import Potential
from ..rates import RateLaw
from ..space import SemiDiscreteSpace
from ..validation import nonnegative, positive
from .diffusion import check_diffusion, diffuse
from .jumps import check_law, check_method, neighbour_table, run_jumps
from .nonfinite import check_policy
from .state import ParticleState, StepInfo, check_state

__all__ = ["strang_step", "lie_step"]


def _prepare(state, space, potential, law, T, dt, diffusion, jump_method, kappa, nonfinite):
    """Validate a composite step's input and reset ``state.info``; returns (T, dt, rate law, neighbour table)."""
    check_state(state, potential, space)
    T, dt = nonnegative("T", T), positive("dt", dt)
    check_policy(nonfinite)
    check_method(jump_method)
    check_diffusion(diffusion, potential, state)
    law = check_law(law, kappa, T)
    state.info = StepInfo()
    table = neighbour_table(space, state.x)
    return T, dt, law, table


def strang_step(state: ParticleState, space: SemiDiscreteSpace, potential: Potential, law: str | RateLaw = "glauber",
                T: float = 1.0, dt: float = 0.01, *, diffusion: str = "langevin", jump_method: str = "exact",
                kappa: float = 1.0, nonfinite: str = "raise", on_large_step: str = "substep",
                gamma: float = 1.0, mass: float = 1.0, max_rounds: int = 10_000) -> ParticleState:
    """Strang splitting: diffusion dt/2, jumps dt, diffusion dt/2 (spec 7.2).

    ``diffusion``: ``"langevin"`` (Euler-Maruyama, O(dt) bias), ``"ou"`` (exact for quadratic f;
    with ``jump_method="exact"`` the total bias is the O(dt^2) splitting error), ``"underdamped"``
    (BAOAB on (x, p)) or ``"none"``.
    """
    T, dt, law, table = _prepare(state, space, potential, law, T, dt, diffusion, jump_method, kappa, nonfinite)
    diffuse(state, potential, T, 0.5 * dt, diffusion, nonfinite, gamma, mass)
    run_jumps(state, table, potential, law, T, dt, jump_method, nonfinite, on_large_step, max_rounds)
    diffuse(state, potential, T, 0.5 * dt, diffusion, nonfinite, gamma, mass)
    state.t += dt
    state.n_steps += 1
    return state


def lie_step(state: ParticleState, space: SemiDiscreteSpace, potential: Potential, law: str | RateLaw = "glauber",
             T: float = 1.0, dt: float = 0.01, *, diffusion: str = "langevin", jump_method: str = "exact",
             kappa: float = 1.0, nonfinite: str = "raise", on_large_step: str = "substep",
             gamma: float = 1.0, mass: float = 1.0, max_rounds: int = 10_000) -> ParticleState:
    """Lie splitting: diffusion dt, then jumps dt (one full step at the cost of one move; O(dt))."""
    T, dt, law, table = _prepare(state, space, potential, law, T, dt, diffusion, jump_method, kappa, nonfinite)
    diffuse(state, potential, T, dt, diffusion, nonfinite, gamma, mass)
    run_jumps(state, table, potential, law, T, dt, jump_method, nonfinite, on_large_step, max_rounds)
    state.t += dt
    state.n_steps += 1
    return state
