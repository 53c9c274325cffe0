"""The distances' compiled loops (numba; imported only when numba is installed, a module of its own
so that numba caches them): the row loop over POT's C++ ``EMD_wrap`` (:mod:`hotnas.distances.emd`)
and the forest test of :func:`hotnas.distances.fgw_cg._unique_lp`."""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import binding
from numba import types

import ot.lp.emd_wrap as _wrap_module

#: POT's C++ entry point (POT >= 0.9.6: with warm-start potentials), by its mangled name
SYMBOL = "_Z8EMD_wrapiiPdS_S_S_S_S_S_mS_S_"

binding.load_library_permanently(_wrap_module.__file__)
FOUND = binding.address_of_symbol(SYMBOL) is not None

_ptr = types.voidptr
# EMD_wrap(n1, n2, X, Y, D, G, alpha, beta, cost, maxIter, alpha_init, beta_init); the two warm-start
# pointers are passed as a 64-bit 0 (NULL: no warm start, as emd_c passes them)
_emd_wrap = types.ExternalFunction(
    SYMBOL, types.intc(types.intc, types.intc, _ptr, _ptr, _ptr, _ptr, _ptr, _ptr, _ptr, types.uint64, types.uint64, types.uint64)
)


@numba.njit(cache=True, nogil=True)
def rows_kernel(P, Q, M, rows, G, U, V, max_iter):  # pragma: no cover - compiled
    """EMD_wrap on the problems ``rows``; plans into G, potentials into U, V; returns the codes."""
    n, m = M.shape[1], M.shape[2]
    cost = np.zeros(1)
    codes = np.zeros(rows.size, dtype=np.int32)
    for r in range(rows.size):
        k = rows[r]
        # EMD_wrap writes the nonzero plan entries and the potentials of nonzero masses only; emd_c
        # hands it zeros
        G[k] = 0.0
        U[k] = 0.0
        V[k] = 0.0
        cost[0] = 0.0
        codes[r] = _emd_wrap(n, m, P[k].ctypes, Q[k].ctypes, M[k].ctypes, G[k].ctypes, U[k].ctypes, V[k].ctypes,
                             cost.ctypes, max_iter, 0, 0)
    return codes


@numba.njit(cache=True, nogil=True)
def forest_kernel(Z):  # pragma: no cover - compiled
    """(B,) True where the bipartite graph (rows, columns; arcs Z[b]) of Z (B, n, m) bool is a forest:
    |arcs| == (n + m) - #components, the components by union-find."""
    B, n, m = Z.shape
    out = np.zeros(B, dtype=np.bool_)
    parent = np.empty(n + m, dtype=np.int64)
    for b in range(B):
        for v in range(n + m):
            parent[v] = v
        arcs = 0
        comps = n + m
        for i in range(n):
            for j in range(m):
                if Z[b, i, j]:
                    arcs += 1
                    x = i
                    while parent[x] != x:
                        x = parent[x]
                    y = n + j
                    while parent[y] != y:
                        y = parent[y]
                    if x != y:
                        parent[y] = x
                        comps -= 1
        out[b] = arcs == n + m - comps
    return out
