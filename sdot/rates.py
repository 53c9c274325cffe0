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

The logarithmic mean ``Lambda(a, b) = (a - b) / (log a - log b)`` (the mobility of ``logmean``, the
conductance of the JKO steps, the theta of the Hamiltonian flow) lives here with its derivatives: with
``r = b / a`` and ``lambda(r) = (r - 1) / log r``, ``Lambda(a, b) = a lambda(r)``,
``dLambda/da = lambda - r lambda'``, ``dLambda/db = lambda'``, ``Lambda_aa = r^2 lambda'' / a``,
``Lambda_ab = -r lambda'' / a``, ``Lambda_bb = lambda'' / a`` (:func:`logmean_with_derivatives`,
:func:`logmean_derivatives`, :func:`logmean_second_derivatives`; the old paths ``sdot.grid`` and
``sdot.hamiltonian`` re-export them).

All functions are vectorised; the laws and ``logmean`` accept numpy arrays or torch tensors (same code
path), the derivatives numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .backend import namespace
from .registry import Registry
from .validation import positive

__all__ = [
    "RateLaw",
    "logmean",
    "logmean_with_derivatives",
    "logmean_derivatives",
    "logmean_second_derivatives",
    "get_rate_law",
    "register_rate_law",
    "RATE_LAWS",
    "glauber",
    "metropolis",
    "upwind",
    "logmean_law",
    "proposal_acceptance",
]


# ----------------------------------------------------------------------------------------------
# the logarithmic mean Lambda(a, b) = (a - b) / (log a - log b) and its derivatives
# ----------------------------------------------------------------------------------------------
# Lambda is the mobility of the log-mean law, the conductance of the JKO steps and the theta of the
# Hamiltonian flow. With r = b / a and lambda(r) = (r - 1) / log r it is 1-homogeneous,
# Lambda(a, b) = a lambda(r); near a = b every quotient loses its digits and series in e = r - 1 are used.
def logmean(a: Any, b: Any) -> Any:
    """Logarithmic mean Lambda(a, b) = (a - b) / (log a - log b), Lambda(a, a) = a, Lambda(a, 0) = 0.

    Near a = b the quotient loses all digits; there the series
    ``Lambda(a, a(1+e)) = a (1 + e/2 - e^2/12 + e^3/24 - 19 e^4/720)`` is used (|e| < 1e-3).
    Inputs must be >= 0; shapes broadcast; numpy arrays or torch tensors (same code path).
    """
    xp = namespace(a, b)
    a = a if xp is not np else np.asarray(a, dtype=float)
    b = b if xp is not np else np.asarray(b, dtype=float)
    lo = xp.minimum(a, b)
    hi = xp.maximum(a, b)
    safe_lo = xp.where(lo > 0, lo, xp.ones_like(lo))
    e = (hi - lo) / safe_lo
    small = e < 1e-3
    series = lo * (1 + e / 2 - e**2 / 12 + e**3 / 24 - 19 * e**4 / 720)
    # log(hi/lo) = log1p(e): no cancellation just above the series threshold
    denom = xp.log1p(xp.where(small | (lo <= 0), xp.ones_like(e), e))
    quotient = (hi - lo) / denom
    out = xp.where(small, series, quotient)
    return xp.where(lo <= 0, xp.zeros_like(out), out)


def logmean_with_derivatives(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Lambda, dLambda/da, dLambda/db) of the logarithmic mean in one pass, for a, b > 0.

    With r = b / a and lambda(r) = (r - 1) / log r: Lambda(a, b) = a lambda(r),
    dLambda/da = lambda(r) - r lambda'(r), dLambda/db = lambda'(r),
    lambda'(r) = (log r - (r - 1) / r) / log(r)^2; Horner forms of the series of lambda and lambda'
    to e^4 (e = r - 1) when |e| < 1e-3. Non-finite values (an argument near 0, where the
    derivative is +inf) become +-1e300 (Newton needs a finite stand-in).
    """
    r = b / a
    e = r - 1.0
    small = np.abs(e) < 1e-3
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        L = np.log(np.where(small, 2.0, r))
        lam = e / L
        dlam = (L - e / r) / (L * L)
        if small.any():
            es = e[small]
            lam[small] = 1 + es * (1 / 2 + es * (-1 / 12 + es * (1 / 24 - es * (19 / 720))))
            dlam[small] = 1 / 2 + es * (-1 / 6 + es * (1 / 8 + es * (-19 / 180 + es * (3 / 32))))
        out = (a * lam, lam - r * dlam, dlam)
    if not all(np.isfinite(x).all() for x in out):
        out = tuple(np.nan_to_num(x, nan=0.0, posinf=1e300, neginf=-1e300) for x in out)
    return out


def logmean_derivatives(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Partial derivatives (d Lambda / da, d Lambda / db) of the logarithmic mean, a, b >= 0.

    Zero arguments are clipped to the smallest normal float first (the derivative there is +inf);
    see :func:`logmean_with_derivatives`.
    """
    tiny = np.finfo(float).tiny
    a = np.maximum(np.asarray(a, dtype=float), tiny)
    b = np.maximum(np.asarray(b, dtype=float), tiny)
    return logmean_with_derivatives(a, b)[1:]


def logmean_second_derivatives(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Second derivatives (Lambda_aa, Lambda_ab, Lambda_bb) of the logarithmic mean, a, b > 0.

    With r = b / a and lambda(r) = (r - 1) / log r, Lambda(a, b) = a lambda(r) gives
    ``Lambda_aa = r^2 lambda''(r) / a``, ``Lambda_ab = -r lambda''(r) / a``,
    ``Lambda_bb = lambda''(r) / a``, where
    ``lambda''(r) = (e L / r^2 - 2 (L - e / r) / r) / L^3`` (e = r - 1, L = log r), replaced by its
    series ``-1/6 + e/4 - 19 e^2/60 + 3 e^3/8`` when |e| < 1e-3. Values that overflow (one
    argument near 0, where Lambda is not differentiable) are clipped to +-1e300.
    """
    tiny = np.finfo(float).tiny
    a = np.maximum(np.asarray(a, dtype=float), tiny)
    r = np.maximum(np.asarray(b, dtype=float), tiny) / a
    e = r - 1.0
    small = np.abs(e) < 1e-3
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        L = np.log(np.where(small, 2.0, r))
        d2 = (e * L / (r * r) - 2.0 * (L - e / r) / r) / (L * L * L)
        if small.any():
            es = e[small]
            d2[small] = -1.0 / 6 + es * (1 / 4 + es * (-19 / 60 + es * (3 / 8)))
        out = (r * r * d2 / a, -r * d2 / a, d2 / a)
    return tuple(np.nan_to_num(x, nan=0.0, posinf=1e300, neginf=-1e300) for x in out)


# ----------------------------------------------------------------------------------------------
# rate laws
# ----------------------------------------------------------------------------------------------
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
