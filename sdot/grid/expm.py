"""The guarded matrix-exponential reference ``exp(t A) r`` of the linear grid flow.

With huge rates (wide box, small T) ``||t A||_1`` can reach 1e50 and more, where scaling and
squaring overflows (NaN) and ``expm_multiply`` would need ~||t A||_1 products. The result must be
finite and keep the mass (``1^T exp(tA) = 1^T``) to a relative 1e-8; otherwise a FloatingPointError
names the norm. Dense ``scipy.linalg.expm`` (cached per t) for at most 1500 states, else ``expm_multiply``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse.linalg as spla

__all__ = ["expm_apply"]

#: above this ||t A||_1 the sparse expm_multiply is refused (it would need about that many products)
_EXPM_MULTIPLY_MAX_NORM = 1e8
_DENSE_MAX_STATES = 1500


def expm_apply(A: Any, t: float, r: np.ndarray, cache: dict | None = None) -> np.ndarray:
    """exp(t A) r for a sparse forward operator A; the dense exponential is kept in ``cache[("expm", t)]``."""
    # ||t A||_1: the largest column sum of |t A|
    norm = float(t) * float(np.asarray(abs(A).sum(axis=0)).max(initial=0.0))
    if A.shape[0] <= _DENSE_MAX_STATES:
        import scipy.linalg as sla

        cache = {} if cache is None else cache
        key = ("expm", float(t))
        E = cache.get(key)
        if E is None:
            with np.errstate(all="ignore"):
                E = sla.expm(A.toarray() * t)
            _check_expm_result(E @ r, r, norm)  # a bad matrix is never cached
            cache[key] = E
        return _check_expm_result(E @ r, r, norm)
    if norm > _EXPM_MULTIPLY_MAX_NORM:
        raise FloatingPointError(
            f"expm reference refused: ||t A||_1 = {norm:.3g} (t = {t:g}) would need ~{norm:.1g} sparse "
            f"products in expm_multiply (limit {_EXPM_MULTIPLY_MAX_NORM:.0e}); the rates are huge (wide box "
            "or small T). Use method='implicit' or a smaller t")
    with np.errstate(all="ignore"):
        out = spla.expm_multiply(A * t, r)
    return _check_expm_result(out, r, norm)


def _check_expm_result(out: np.ndarray, r: np.ndarray, norm: float, rtol: float = 1e-8) -> np.ndarray:
    """Return ``out`` = exp(tA) r if it is finite and keeps the mass of ``r``; else FloatingPointError."""
    mass0 = float(np.sum(r))
    finite = bool(np.all(np.isfinite(out)))
    mass1 = float(np.sum(out)) if finite else float("nan")
    if not finite or abs(mass1 - mass0) > rtol * max(float(np.sum(np.abs(r))), 1e-300):
        what = "is not finite" if not finite else f"changed the mass from {mass0!r} to {mass1!r}"
        raise FloatingPointError(
            f"the expm reference blew up: exp(tA) rho {what}; ||t A||_1 = {norm:.3g} is too large for "
            "scaling and squaring (huge rates: wide box or small T). Use method='implicit' or a smaller t")
    return out
