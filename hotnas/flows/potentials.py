"""Potentials from tables of values: the d = 0 potential of a set of nodes, and the robust spread of values.

:func:`table_potential` wraps node values ``f(g) = fvals[g]`` as an :mod:`sdot.potentials` potential (the
form sdot's jump and birth-death steps take); :func:`robust_spread` is the scale ``IQR / 1.349`` that the
tabular flow uses for its units check and its scale-free ``"spread"`` units.
"""

from __future__ import annotations

import numpy as np

from sdot.potentials import CallablePotential

__all__ = ["table_potential", "robust_spread"]


def robust_spread(values: np.ndarray) -> float:
    """Scale of a sample that ignores a heavy tail: IQR / 1.349 (the standard deviation for normal
    data), falling back to the standard deviation, then 1, when it is zero (ties)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return 1.0
    q75, q25 = np.percentile(v, [75, 25])
    for s in ((q75 - q25) / 1.349, float(v.std())):
        if s > 0:
            return float(s)
    return 1.0


def table_potential(fvals: np.ndarray) -> CallablePotential:
    """A d = 0 potential given by a table of node values (f(x, g) = fvals[g])."""
    table = np.asarray(fvals, dtype=float)

    def f(x, g):
        return table[np.asarray(g, dtype=np.int64)]

    return CallablePotential(f, n_nodes=len(table), dim=0, grad=lambda x, g: np.zeros((len(g), 0)))
