"""Moves in x at a fixed node: overdamped Langevin (Euler-Maruyama), exact Ornstein-Uhlenbeck, underdamped BAOAB.

* **Langevin** ``X <- X - dt grad_x f(X, G) + sqrt(2 T dt) xi`` (weak error O(dt));
* **exact OU** for :class:`~sdot.potentials.QuadraticPotential`
  ``X <- m_g + (X - m_g) e^{-a_g dt} + sqrt(T/a_g (1 - e^{-2 a_g dt})) xi`` (no time-step bias);
* **underdamped Langevin** (BAOAB, Leimkuhler-Matthews) on (X, P) with friction gamma.

Each ``*_step`` validates its input and resets ``state.info``; the ``*_move`` kernels do the arithmetic only
and are what the splitting schemes (:mod:`sdot.particles.splitting`) call through :func:`diffuse`.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from ..backend import is_torch
from ..potentials import Potential, QuadraticPotential
from ..validation import nonnegative, one_of, positive
from . import random as draws
from .arrays import nonzero, row_nonfinite
from .kernels import QuadraticKernel, gradient
from .nonfinite import check_policy, handle_nonfinite
from .state import ParticleState, StepInfo, check_state
from .workspace import WS

__all__ = ["DIFFUSIONS", "langevin_step", "ou_step", "underdamped_step", "langevin_move", "ou_move",
           "underdamped_move", "diffuse", "check_diffusion"]

DIFFUSIONS = ("langevin", "ou", "underdamped", "none")


def langevin_move(state: ParticleState, potential: Potential, T: float, dt: float, nonfinite: str) -> None:
    """In-place Euler-Maruyama move (no validation, ``state.info`` kept)."""
    x, g = state.x, state.g
    if x.shape[1] == 0:
        return
    grad = gradient(potential, x, g)
    noise_scale = math.sqrt(2.0 * T * dt)
    if isinstance(x, np.ndarray):
        step = WS.get("step", x.shape, x.dtype)
        owned = QuadraticKernel.get(potential, x) is not None  # grad is our scratch buffer
        if T > 0:
            state.rng.standard_normal(dtype=x.dtype, out=step)
            step *= noise_scale
            if owned:
                grad *= dt
                step -= grad
            else:
                step -= dt * grad
        else:
            np.multiply(grad, -dt, out=step)
        cand = WS.get("cand", x.shape, x.dtype)
        np.add(x, step, out=cand)
    else:
        cand = x - dt * grad.to(x.dtype)
        if T > 0:
            cand += noise_scale * draws.normal(state, tuple(x.shape))
    bad = row_nonfinite(cand)
    if bad is not None:
        idx = nonzero(bad)
        if nonfinite == "freeze":
            cand[idx] = x[idx]
        handle_nonfinite(state, idx, nonfinite, "gradient or position in the Langevin step", new_x=cand)
    if isinstance(x, np.ndarray):
        np.copyto(x, cand)
    else:
        state.x = cand


def langevin_step(state: ParticleState, potential: Potential, T: float, dt: float, *,
                  nonfinite: str = "raise") -> ParticleState:
    """Euler-Maruyama step ``X <- X - dt grad_x f(X, G) + sqrt(2 T dt) xi``, xi ~ N(0, I_d).

    Weak error O(dt) (the stationary law is pi_T up to O(dt)). T = 0 is plain gradient descent.
    Non-finite gradients or new positions follow ``nonfinite`` (module docstring).
    """
    check_state(state, potential)
    T, dt = nonnegative("T", T), positive("dt", dt)
    check_policy(nonfinite)
    state.info = StepInfo()
    langevin_move(state, potential, T, dt, nonfinite)
    state.t += dt
    return state


def _ou_coefficients(potential: QuadraticPotential, T: float, dt: float):
    a = potential.a
    decay = np.exp(-a * dt)
    small = np.abs(a * dt) < 1e-8
    safe_a = np.where(small, 1.0, a)
    # T/a (1 - e^{-2 a dt}); its a -> 0 limit is Brownian motion 2 T dt (1 - a dt)
    var = np.where(small, 2 * T * dt * (1 - a * dt), -T * np.expm1(-2 * safe_a * dt) / safe_a)
    return decay, np.sqrt(np.maximum(var, 0.0))


def ou_move(state: ParticleState, potential: QuadraticPotential, T: float, dt: float) -> None:
    """In-place exact OU transition (no validation)."""
    x, g = state.x, state.g
    if x.shape[1] == 0:
        return
    decay, std = _ou_coefficients(potential, T, dt)
    if is_torch(x):
        torch = sys.modules["torch"]
        kw = {"dtype": x.dtype, "device": x.device}
        decay_t, std_t, m_t = (torch.as_tensor(v, **kw) for v in (decay, std, potential.m))
        mg = m_t[g]
        state.x = mg + (x - mg) * decay_t[g][:, None] + std_t[g][:, None] * draws.normal(state, tuple(x.shape))
        return
    n = x.shape[0]
    mg = np.take(np.ascontiguousarray(potential.m, dtype=x.dtype), g, axis=0, out=WS.get("mg", x.shape, x.dtype))
    noise = state.rng.standard_normal(dtype=x.dtype, out=WS.get("step", x.shape, x.dtype))
    noise *= np.take(std.astype(x.dtype), g, out=WS.get("sd", n, x.dtype))[:, None]
    x -= mg
    x *= np.take(decay.astype(x.dtype), g, out=WS.get("dec", n, x.dtype))[:, None]
    x += mg
    x += noise


def ou_step(state: ParticleState, potential: QuadraticPotential, T: float, dt: float) -> ParticleState:
    """Exact Ornstein-Uhlenbeck transition for ``f = a_g |x - m_g|^2 / 2 + c_g`` (spec 7.2, 8.4).

    ``X <- m_g + (X - m_g) e^{-a_g dt} + sqrt(T / a_g (1 - e^{-2 a_g dt})) xi``: the law of the
    overdamped Langevin diffusion after time dt, with no time-step bias (a_g = 0 gives Brownian
    motion). The potential's parameters are finite (checked when it is built) and positions are
    finite, so no non-finite values can arise.
    """
    if not isinstance(potential, QuadraticPotential):
        raise TypeError(f"the exact OU step needs a QuadraticPotential, got {type(potential).__name__}; "
                        "use langevin_step for other potentials")
    check_state(state, potential)
    T, dt = nonnegative("T", T), positive("dt", dt)
    state.info = StepInfo()
    ou_move(state, potential, T, dt)
    state.t += dt
    return state


def underdamped_move(state: ParticleState, potential: Potential, T: float, dt: float, gamma: float,
                     mass: float, nonfinite: str) -> None:
    """In-place BAOAB step on (x, p) (no validation)."""
    x, g, p = state.x, state.g, state.p
    if x.shape[1] == 0:
        return
    h = 0.5 * dt
    p1 = p - h * gradient(potential, x, g)                                  # B
    x1 = x + (h / mass) * p1                                             # A
    c1 = math.exp(-gamma * dt)
    p1 = c1 * p1 + math.sqrt(max(0.0, (1 - c1 * c1) * mass * T)) * draws.normal(state, tuple(x.shape))  # O
    x1 = x1 + (h / mass) * p1                                            # A
    p1 = p1 - h * gradient(potential, x1, g)                                # B
    bad_x, bad_p = row_nonfinite(x1), row_nonfinite(p1)
    if bad_x is not None or bad_p is not None:
        bad = bad_x if bad_p is None else (bad_p if bad_x is None else bad_x | bad_p)
        idx = nonzero(bad)
        x1[idx], p1[idx] = x[idx], p[idx]  # freeze; under "reset" overwritten by clones below
        state.p = p1
        handle_nonfinite(state, idx, nonfinite, "gradient, position or momentum in the underdamped step",
                          new_x=x1)
    state.x, state.p = x1, p1


def underdamped_step(state: ParticleState, potential: Potential, T: float, dt: float, *, gamma: float = 1.0,
                     mass: float = 1.0, nonfinite: str = "raise") -> ParticleState:
    """One BAOAB step of underdamped Langevin dynamics (Leimkuhler-Matthews 2013).

    ``dX = P/M dt``, ``dP = -grad_x f(X, G) dt - gamma P dt + sqrt(2 gamma M T) dW``; invariant law
    ``exp(-(f(x, g) + |p|^2 / (2M)) / T)`` up to O(dt^2) in x. Needs ``state.p`` (see
    :meth:`ParticleState.with_momenta`). Jumps on G keep (x, p), so the joint Gibbs law stays
    invariant when combined with a reversible jump law.
    """
    check_state(state, potential)
    T, dt = nonnegative("T", T), positive("dt", dt)
    gamma, mass = nonnegative("gamma", gamma), positive("mass", mass)
    check_policy(nonfinite)
    if state.p is None:
        raise ValueError("underdamped_step needs momenta: call state.with_momenta(T) first")
    state.info = StepInfo()
    underdamped_move(state, potential, T, dt, gamma, mass, nonfinite)
    state.t += dt
    return state


def diffuse(state, potential, T, dt, diffusion, nonfinite, gamma, mass):
    """One move of length dt with the chosen ``diffusion`` (``"none"``: no move in x)."""
    if diffusion == "langevin":
        langevin_move(state, potential, T, dt, nonfinite)
    elif diffusion == "ou":
        ou_move(state, potential, T, dt)
    elif diffusion == "underdamped":
        underdamped_move(state, potential, T, dt, gamma, mass, nonfinite)
    # "none": pure graph flow


def check_diffusion(diffusion: str, potential: Potential, state: ParticleState) -> None:
    """ValueError/TypeError unless ``diffusion`` is known and usable with this potential and state."""
    one_of("diffusion", diffusion, DIFFUSIONS)
    if diffusion == "ou" and not isinstance(potential, QuadraticPotential):
        raise TypeError(f"diffusion='ou' needs a QuadraticPotential, got {type(potential).__name__}")
    if diffusion == "underdamped" and state.p is None:
        raise ValueError("diffusion='underdamped' needs momenta: call state.with_momenta(T) first")
