"""Second derivatives of the logarithmic mean (the Newton Jacobian of the JKO step needs them)."""

from __future__ import annotations

import numpy as np

from ..grid import logmean_with_derivatives

__all__ = ["lambda_second"]


def lambda_second(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """(Lambda, Lambda_a, Lambda_b, Lambda_aa, Lambda_ab, Lambda_bb) of the log-mean, a, b > 0.

    With r = b / a and lambda(r) = (r - 1) / log r: Lambda_aa = r^2 lambda''(r) / a,
    Lambda_ab = -r lambda''(r) / a, Lambda_bb = lambda''(r) / a, where
    lambda'' = (e L / r^2 - 2 (L - e / r) / r) / L^3 (e = r - 1, L = log r); series
    ``-1/6 + e/4 - 19 e^2/60 + 3 e^3/8`` for |e| < 1e-2.
    """
    tiny = np.finfo(float).tiny
    a = np.maximum(a, tiny)
    b = np.maximum(b, tiny)
    L0, La, Lb = logmean_with_derivatives(a, b)
    r = b / a
    e = r - 1.0
    small = np.abs(e) < 1e-2
    with np.errstate(all="ignore"):
        L = np.log(np.where(small, 2.0, r))
        d2 = (e * L / (r * r) - 2 * (L - e / r) / r) / (L * L * L)
        es = e[small]
        d2[small] = -1 / 6 + es * (1 / 4 + es * (-19 / 60 + es * (3 / 8)))
        d2a = d2 / a
        rd2a = r * d2a
        sec = (r * rd2a, -rd2a, d2a)
    if not all(np.isfinite(x).all() for x in sec):  # L0, La, Lb are finite already
        sec = tuple(np.nan_to_num(x, nan=0.0, posinf=1e300, neginf=-1e300) for x in sec)
    return (L0, La, Lb, *sec)

