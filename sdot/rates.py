"""Rate laws for the reaction (jump) part of the flow on G, chosen by name.

For a node pair g ~ h with weight w = w(g, h) and potentials f_g = f(x, g), f_h = f(x, h) at the
same x, a *linear* law gives the jump rate k(g -> h; x) (spec ``semi-discrete-flow.md`` 4.3, 4.4):

=============  ================================================  ===========================
name           k(g -> h; x)                                      leaves pi_T invariant
=============  ================================================  ===========================
``glauber``    T w exp((f_g - f_h) / (2T)) / kappa                yes (square-root rates)
``metropolis`` T w min(1, exp((f_g - f_h) / T)) / kappa           yes
``upwind``     w (f_g - f_h)_+ / kappa   (T = 0, the NASGD law)   no (downhill only)
=============  ================================================  ===========================

The nonlinear ``logmean`` law (4.2) has no rate, only a net flux depending on densities:
``J(g -> h) = -w [T (rho_h - rho_g) + Lambda(rho_g, rho_h) (f_h - f_g)] / kappa`` with the
logarithmic mean Lambda. Every law has ``flux``; linear laws also have ``rate``. The graph-metric
scale kappa (an engineering option, spec 3.3) divides every rate; default 1.

All functions are vectorised and accept numpy arrays or torch tensors (same code path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .backend import namespace
from .logmean import logmean  # the log-mean lives beside the rate laws: sdot.logmean (re-exported here)
from .registry import Registry
from .validation import positive

__all__ = [
    "RateLaw",
    "logmean",
    "get_rate_law",
    "register_rate_law",
    "RATE_LAWS",
    "glauber",
    "metropolis",
    "upwind",
    "logmean_law",
    "proposal_acceptance",
]


def _check_T(name: str, T: Any) -> None:
    Tn = np.asarray(T.detach().cpu() if hasattr(T, "detach") else T, dtype=float)
    if not np.all(np.isfinite(Tn)) or np.any(Tn <= 0):
        raise ValueError(f"rate law {name!r} needs a temperature T > 0, got T = {T!r}")


@dataclass(frozen=True)
class RateLaw:
    """A named rate law.

    Attributes
    ----------
    name : str
    linear : bool
        True when a jump rate k(g -> h; x) exists independent of the densities.
    gibbs_reversible : bool
        True when pi_T proportional to exp(-f/T) is invariant and reversible (tests check it).
    needs_temperature : bool
        True when T > 0 is required.
    kappa : float
        Scale dividing every rate (graph part of the metric).
    """

    name: str
    linear: bool
    gibbs_reversible: bool
    needs_temperature: bool
    _rate: Callable[..., Any] | None
    _flux: Callable[..., Any] | None = None
    kappa: float = 1.0

    def with_kappa(self, kappa: float) -> "RateLaw":
        """The same law with the graph-metric scale kappa (> 0)."""
        return RateLaw(self.name, self.linear, self.gibbs_reversible, self.needs_temperature,
                       self._rate, self._flux, positive("kappa", kappa))

    def check_temperature(self, T: Any) -> None:
        """Raise ValueError when this law needs T > 0 and T is not."""
        if self.needs_temperature:
            _check_T(self.name, T)

    def rate(self, f_from: Any, f_to: Any, w: Any, T: Any = 0.0) -> Any:
        """Jump rate k(g -> h; x) >= 0 for potentials f_from = f(x, g), f_to = f(x, h); broadcasts."""
        if not self.linear:
            raise TypeError(f"rate law {self.name!r} is nonlinear: it has a flux, not a rate")
        self.check_temperature(T)
        return self._rate(f_from, f_to, w, T) / self.kappa

    def flux(self, rho_from: Any, rho_to: Any, f_from: Any, f_to: Any, w: Any, T: Any = 0.0) -> Any:
        """Net mass rate from g to h: k(g->h) rho_g - k(h->g) rho_h for linear laws."""
        self.check_temperature(T)
        if self.linear:
            return (self._rate(f_from, f_to, w, T) * rho_from - self._rate(f_to, f_from, w, T) * rho_to) / self.kappa
        return self._flux(rho_from, rho_to, f_from, f_to, w, T) / self.kappa


def _glauber(fg, fh, w, T):
    xp = namespace(fg, fh, w)
    return T * w * xp.exp((fg - fh) / (2 * T))


def _metropolis(fg, fh, w, T):
    xp = namespace(fg, fh, w)
    d = (fg - fh) / T
    return T * w * xp.exp(xp.minimum(d, xp.zeros_like(d)))


def _upwind(fg, fh, w, T):
    xp = namespace(fg, fh, w)
    d = fg - fh
    return w * xp.maximum(d, xp.zeros_like(d))


def _logmean_flux(rg, rh, fg, fh, w, T):
    return -w * (T * (rh - rg) + logmean(rg, rh) * (fh - fg))


glauber = RateLaw("glauber", linear=True, gibbs_reversible=True, needs_temperature=True, _rate=_glauber)
metropolis = RateLaw("metropolis", linear=True, gibbs_reversible=True, needs_temperature=True, _rate=_metropolis)
upwind = RateLaw("upwind", linear=True, gibbs_reversible=False, needs_temperature=False, _rate=_upwind)
logmean_law = RateLaw("logmean", linear=False, gibbs_reversible=True, needs_temperature=True, _rate=None,
                      _flux=_logmean_flux)

#: name -> RateLaw (one :class:`sdot.registry.Registry`: duplicates refused, did-you-mean errors).
RATE_LAWS: Registry = Registry("rate_law", hint="add one with sdot.rates.register_rate_law(RateLaw(...))")


def proposal_acceptance(rate: Any, degree: Any, dt: float) -> np.ndarray:
    """Acceptance probability of a jump g -> h proposed with probability ``q = w(g, h) / deg(g)``.

    ``rate`` is the law's rate for unit weight, r = k(g -> h) / w(g, h). The proposed-then-accepted
    chain must jump to h at the rate ``w r`` over a time ``dt``; accepting with

        p = 1 - exp(-dt w r / q) = 1 - exp(-dt deg(g) r)

    gives ``P(g -> h) = q p = dt w r + O(dt^2)``: the weight cancels, only the degree is left.
    An overflowing rate (+inf) is accepted with probability 1, a NaN rate with 0. Shapes of
    ``rate`` and ``degree`` broadcast; returns an array in [0, 1].
    """
    r = np.asarray(rate, dtype=float)
    deg = np.asarray(degree, dtype=float)
    if np.any(~(deg > 0)):
        raise ValueError(f"the degree deg(g) = sum_h w(g, h) must be > 0, got {degree!r}")
    dt = positive("dt", dt)
    with np.errstate(over="ignore", invalid="ignore"):
        p = -np.expm1(-dt * deg * r)
    return np.where(np.isnan(p), 0.0, np.clip(p, 0.0, 1.0))


def register_rate_law(law: RateLaw) -> RateLaw:
    """Add a law to the registry under ``law.name`` (configs and the CLI find it by name).

    Registering the same law again is a no-op; a different law under a taken name raises."""
    if not isinstance(law, RateLaw):
        raise TypeError(f"register_rate_law takes a RateLaw, got {type(law).__name__}")
    return RATE_LAWS.register(law.name, law)


for _law in (glauber, metropolis, upwind, logmean_law):
    register_rate_law(_law)


def get_rate_law(law: str | RateLaw, kappa: float = 1.0) -> RateLaw:
    """Look a law up by name (``glauber``, ``metropolis``, ``logmean``, ``upwind``) or pass one through."""
    if isinstance(law, RateLaw):
        return law if kappa == 1.0 else law.with_kappa(kappa)
    out = RATE_LAWS.load(law)
    return out if kappa == 1.0 else out.with_kappa(kappa)
