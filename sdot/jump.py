"""One propose/accept jump on a weighted graph, with one overflow policy (every flow of hotnas uses it).

A particle at node g has proposed g' with probability ``q(g'|g) = w(g, g') / deg(g)``,
``deg(g) = sum_h w(g, h)``; f = f(x, g) and f' = f(x, g') are the potentials at the same x. It
accepts with probability p, in one of two forms:

**Rate form** (``dt`` given; continuous time, any linear law k of :mod:`sdot.rates`)::

    p = 1 - exp(-dt deg(g) r),       r = k(g -> g') / w(g, g')  (the law's rate for unit weight),

so ``P(g -> g') = q p = dt k(g -> g') + O(dt^2)``: to first order the jump chain of the rate law for a
time dt, with only the proposed node evaluated (:func:`sdot.rates.proposal_acceptance`).

**Metropolis–Hastings form** (``dt`` None; discrete time), with
``x = pi_T(g') q(g|g') / (pi_T(g) q(g'|g)) = exp(-(f' - f) / T) deg(g) / deg(g')`` (w symmetric)::

    metropolis:  A = min(1, x)           glauber (Barker / heat bath):  A = x / (1 + x),

both of which satisfy detailed balance ``pi_T(g) q(g'|g) A(g -> g') = pi_T(g') q(g|g') A(g' -> g)`` for
the Gibbs measure ``pi_T ∝ exp(-f/T)`` exactly (the acceptance is computed in log space).

**Overflow policy** (one rule, two shapes): the potential values that enter one rate computation span
at most ``GAP_CAP * T`` — for a law whose rate overflows at large gaps (detected: the rate at a gap of
``2 GAP_CAP T`` is not finite; glauber ``T w exp(gap/2T)`` is, metropolis and upwind are not). For a
proposal that is ``clip(f - f', -GAP_CAP T, GAP_CAP T)`` (:func:`clip_gap`); for a table of node values
(the exact chain on a subgraph) ``f <- min(f, min f + GAP_CAP T)`` (:func:`cap_potential`); for two
values the two coincide. A rate of ``exp(GAP_CAP / 2) = exp(500)`` is instantaneous at any dt, so the
cap changes no decision a finite computation could make. A proposal whose f or f' is not finite
(a diverged network, a failed architecture) is rejected (p = 0).

    >>> import numpy as np
    >>> res = propose_accept([1.0, 0.0], [0.0, 1.0], 1.0, "metropolis", np.random.default_rng(0),
    ...                      degree=[2.0, 2.0], degree_to=[2.0, 2.0])
    >>> np.round(res.p, 4).tolist()
    [1.0, 0.3679]
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .rates import RateLaw, get_rate_law, proposal_acceptance

__all__ = ["GAP_CAP", "JumpDecision", "acceptance", "cap_potential", "caps_gaps", "clip_gap", "mh_log_acceptance",
           "propose_accept", "MH_LAWS"]

#: the widest potential gap, in units of T, that enters a rate of a law that overflows (module doc)
GAP_CAP = 1000.0
#: laws with a discrete-time (Metropolis–Hastings form) acceptance: metropolis min(1, x), glauber x/(1+x)
MH_LAWS = ("metropolis", "glauber")


def _law(law: str | RateLaw) -> RateLaw:
    law = get_rate_law(law)
    if not law.linear:
        raise ValueError(f"rate law {law.name!r} has no jump rate (nonlinear); use glauber, metropolis or upwind")
    return law


@functools.lru_cache(maxsize=None)
def _overflows(law: RateLaw) -> bool:
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.asarray(law.rate(np.float64(2.0 * GAP_CAP), np.float64(0.0), 1.0, 1.0), dtype=float)
    return not bool(np.all(np.isfinite(r)))


def caps_gaps(law: str | RateLaw) -> bool:
    """Whether the overflow policy applies to ``law`` (its rate at a gap of ``2 GAP_CAP T`` is not finite)."""
    return _overflows(_law(law))


def clip_gap(gap: Any, T: float, law: str | RateLaw) -> np.ndarray:
    """The overflow policy for proposals: ``clip(gap, -GAP_CAP T, GAP_CAP T)`` when ``law`` overflows, else
    ``gap`` unchanged (float64 array)."""
    gap = np.asarray(gap, dtype=float)
    if not caps_gaps(law):
        return gap
    return np.clip(gap, -GAP_CAP * T, GAP_CAP * T)


def cap_potential(f: Any, T: float, law: str | RateLaw) -> np.ndarray:
    """The overflow policy for a table of node values: ``min(f, min f + GAP_CAP T)`` when ``law`` overflows
    (so no two finite values are more than GAP_CAP T apart), else ``f`` unchanged (float64 array)."""
    f = np.asarray(f, dtype=float)
    if f.size == 0 or not caps_gaps(law):
        return f
    return np.minimum(f, float(f.min()) + GAP_CAP * T)


def acceptance(f_from: Any, f_to: Any, T: float, law: str | RateLaw, *, degree: Any, dt: float) -> np.ndarray:
    """Rate form: ``p = 1 - exp(-dt deg(g) r(clip_gap(f - f')))`` (module doc); 0 where f or f' is not finite.

    Shapes of ``f_from``, ``f_to`` and ``degree`` broadcast; ``T`` may be 0 for a law that needs none (upwind).
    """
    law = _law(law)
    f0, f1 = np.asarray(f_from, dtype=float), np.asarray(f_to, dtype=float)
    ok = np.isfinite(f0) & np.isfinite(f1)
    with np.errstate(over="ignore", invalid="ignore"):
        gap = clip_gap(np.where(ok, f0 - f1, 0.0), T, law)
        r = np.asarray(law.rate(gap, np.zeros_like(gap), 1.0, T), dtype=float)
        p = proposal_acceptance(r, degree, dt)
    return np.where(ok & np.isfinite(p), p, 0.0)


def mh_log_acceptance(f_from: Any, f_to: Any, T: float, law: str | RateLaw, *, degree: Any,
                      degree_to: Any) -> np.ndarray:
    """Metropolis–Hastings form, in log space: ``log A`` with ``log x = -(f' - f)/T + log deg(g) - log deg(g')``,
    ``A = min(1, x)`` (metropolis) or ``x / (1 + x)`` (glauber); ``-inf`` where f or f' is not finite."""
    law = _law(law)
    if law.name not in MH_LAWS:
        raise ValueError(f"rate law {law.name!r} has no Metropolis-Hastings acceptance (it needs a Gibbs-reversible "
                         f"law: one of {MH_LAWS}); pass dt= for the rate form")
    law.check_temperature(T)
    f0, f1 = np.asarray(f_from, dtype=float), np.asarray(f_to, dtype=float)
    ok = np.isfinite(f0) & np.isfinite(f1)
    with np.errstate(invalid="ignore"):
        log_x = -(f1 - f0) / T + np.log(np.asarray(degree, dtype=float)) - np.log(np.asarray(degree_to, dtype=float))
    log_a = np.minimum(0.0, log_x) if law.name == "metropolis" else -np.logaddexp(0.0, -log_x)
    return np.where(ok, log_a, -np.inf)


@dataclass(frozen=True)
class JumpDecision:
    """Outcome of :func:`propose_accept`: ``accepted`` (bool mask), ``p`` (acceptance probabilities)."""

    accepted: np.ndarray
    p: np.ndarray


def propose_accept(f_from: Any, f_to: Any, T: float, law: str | RateLaw, rng: np.random.Generator, *,
                   degree: Any, dt: float | None = None, degree_to: Any = None) -> JumpDecision:
    """Accept or reject proposals g -> g' (one uniform per proposal from ``rng``, in order).

    ``dt`` given: the rate form (:func:`acceptance`), accept iff ``u < p``. ``dt`` None: the
    Metropolis–Hastings form (:func:`mh_log_acceptance`, needs ``degree_to``), accept iff ``log u < log A``.
    A scalar input draws ``rng.random()`` once (the same draw as a size-1 array).
    """
    shape = np.broadcast(np.asarray(f_from), np.asarray(f_to)).shape
    if dt is not None:
        p = acceptance(f_from, f_to, T, law, degree=degree, dt=dt)
        u = rng.random(shape) if shape else rng.random()
        return JumpDecision(np.asarray(u < p), p)
    if degree_to is None:
        raise ValueError("the Metropolis-Hastings form (dt=None) needs degree_to = deg(g') of each proposal")
    log_a = mh_log_acceptance(f_from, f_to, T, law, degree=degree, degree_to=degree_to)
    u = rng.random(shape) if shape else rng.random()
    with np.errstate(divide="ignore"):
        accepted = np.log(u) < log_a
    return JumpDecision(np.asarray(accepted), np.exp(log_a))
