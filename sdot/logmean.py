"""The logarithmic mean Lambda(a, b) = (a - b) / (log a - log b) and its first and second derivatives.

Lambda is the mobility of the log-mean rate law (:mod:`sdot.rates`), the conductance of the JKO
steps (:mod:`sdot.jko`) and the theta of the Hamiltonian flow (:mod:`sdot.hamiltonian`). With
``r = b / a`` and ``lambda(r) = (r - 1) / log r`` it is 1-homogeneous, ``Lambda(a, b) = a lambda(r)``, so

    dLambda/da = lambda(r) - r lambda'(r),   dLambda/db = lambda'(r),
    Lambda_aa = r^2 lambda''(r) / a,   Lambda_ab = -r lambda''(r) / a,   Lambda_bb = lambda''(r) / a,

with ``lambda'(r) = (L - e / r) / L^2`` and ``lambda''(r) = (e L / r^2 - 2 (L - e / r) / r) / L^3``
(e = r - 1, L = log r). Near a = b every quotient loses its digits; there (|e| < 1e-3) the Horner
forms of the series in e are used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backend import namespace

__all__ = ["logmean", "logmean_with_derivatives", "logmean_derivatives", "logmean_second_derivatives"]


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
