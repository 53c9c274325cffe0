"""Small array helpers that let one code path serve numpy arrays and torch tensors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..backend import is_torch, namespace

__all__ = ["axis", "nonzero", "all_finite", "row_nonfinite"]


def axis(xp, a):
    """The reduction keyword of the namespace ``xp``: ``axis=a`` (numpy) or ``dim=a`` (torch)."""
    return {"axis": a} if xp is np else {"dim": a}


def nonzero(mask: Any) -> Any:
    """Indices where the 1-D ``mask`` is true (numpy or torch)."""
    if is_torch(mask):
        return mask.nonzero(as_tuple=True)[0]
    return np.flatnonzero(mask)


def all_finite(a: Any) -> bool:
    """True when every entry is finite. numpy: one summation (a finite sum proves it) before the
    full check."""
    if isinstance(a, np.ndarray):
        if a.size == 0:
            return True
        with np.errstate(over="ignore", invalid="ignore"):
            s = a.sum()
        if math.isfinite(float(s)):
            return True
        return bool(np.isfinite(a).all())
    return bool(namespace(a).isfinite(a).all())


def row_nonfinite(a: Any) -> Any:
    """Mask of rows (N,) of a (N, d) or (N,) array holding NaN/inf; None when all are finite."""
    if all_finite(a):
        return None
    xp = namespace(a)
    fin = xp.isfinite(a)
    if a.ndim == 2:
        return ~fin.all(**axis(xp, 1))
    return ~fin
