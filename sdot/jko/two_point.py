"""Closed-form geodesic distance between two-node states (spec 8.10), the check of the JKO action."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..rates import logmean

__all__ = ["two_point_distance"]


def two_point_distance(r0: float, r1: float, w: float = 1.0, theta: Any = None) -> float:
    """Geodesic distance between (r0, 1 - r0) and (r1, 1 - r1) on two nodes (spec 8.10).

    ``W = | int_{r0}^{r1} dr / sqrt(w theta(r, 1 - r)) |`` with theta the log-mean by default.
    Example: ``two_point_distance(0.2, 0.8) ≈ 0.86780``.
    """
    from scipy.integrate import quad

    th = theta if theta is not None else (lambda a, b: float(logmean(np.array(a), np.array(b))))
    val, _ = quad(lambda r: 1.0 / np.sqrt(w * th(r, 1 - r)), min(r0, r1), max(r0, r1), epsabs=1e-13, epsrel=1e-12)
    return float(val)

