"""Exact OT solves, ``emd(a, b, M) -> (plan, cost, u, v, code)`` and the batched ``emd_rows``, fast where POT allows.

The distances call the network simplex hundreds of thousands of times on tiny problems, where POT's
public :func:`ot.emd` spends more time in Python argument checks than in the solve. POT's compiled
entry point ``ot.lp.emd_wrap.emd_c`` skips them, but it is private API: it is used only when it
imports and answers a closed-form probe (two points, cost 1 off the diagonal, plan diag(1/2), cost 0)
at first use; otherwise every call goes through the public :func:`ot.emd` with ``log=True``. Both
return the same plan, cost, dual potentials and result code (1 = optimal).

:func:`emd_rows` solves many problems of one shape in one call.  With numba installed (the ``fast``
extra) it calls POT's own C++ solver ``EMD_wrap`` (the function ``emd_c`` wraps, looked up in POT's
compiled module by its C++ signature) from a compiled loop: the same solver on the same bits, so the
same plans, potentials and codes as the per-problem calls bit for bit, without their Python
overhead (about 2.5x faster per solve on 8 x 8 problems).  The compiled path is used only when
numba imports, the symbol is found and the same closed-form probe passes; ``SDOT_NAS_COMPILED=0`` in
the environment, or :func:`use_compiled` (False), turns it off.  [engineering choice: speed only,
results identical]
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["emd", "emd_rows", "using_private_solver", "using_compiled", "use_compiled"]

_SOLVER = None  # resolved on first use
_COMPILED: object = None  # None: not resolved yet; False: unavailable / off; else the compiled kernel
_COMPILED_WHY = ""


def _public(a, b, M, max_iter, _threads=1):
    import ot

    G, log = ot.emd(a, b, M, numItermax=int(max_iter), log=True)
    code = 1 if log.get("result_code", 1) == 1 else int(log.get("result_code", 0))
    return G, float(log["cost"]), log["u"], log["v"], code


def _resolve():
    global _SOLVER
    try:
        from ot.lp.emd_wrap import emd_c  # private: guarded by the probe below

        a = np.array([0.5, 0.5])
        G, cost, _u, _v, code = emd_c(a, a.copy(), np.array([[0.0, 1.0], [1.0, 0.0]]), 1000, 1)
        if code == 1 and abs(cost) < 1e-12 and np.allclose(G, np.diag(a)):
            _SOLVER = emd_c
            return _SOLVER
    except Exception:  # noqa: BLE001 — any change in the private API means: use the public one
        pass
    _SOLVER = _public
    return _SOLVER


def emd(a: np.ndarray, b: np.ndarray, M: np.ndarray, max_iter: int = 100000):
    """Exact OT between histograms ``a`` (n,) and ``b`` (m,) (equal mass) for the cost ``M`` (n, m).

    Returns ``(G, cost, u, v, code)``: plan (n, m), sum(G * M), dual potentials (n,), (m,), and POT's
    result code (1 = optimal).
    """
    solver = _SOLVER or _resolve()
    return solver(a, b, M, max_iter, 1)


def using_private_solver() -> bool:
    """True when POT's compiled ``emd_c`` passed the probe and is in use."""
    return (_SOLVER or _resolve()) is not _public


# ------------------------------------------------------------------------------------------------
def _build_compiled():
    """The compiled row loop over POT's ``EMD_wrap``, or a string saying why there is none."""
    if os.environ.get("SDOT_NAS_COMPILED", "1").strip().lower() in ("0", "false", "no", "off"):
        return "turned off by SDOT_NAS_COMPILED"
    if not using_private_solver():
        return "POT's compiled emd_c is not in use"
    try:
        from . import _compiled

        if not _compiled.FOUND:
            import ot

            return f"POT {ot.__version__} has no {_compiled.SYMBOL}"
        rows_kernel = _compiled.rows_kernel
        # the same closed-form probe as emd_c's, through the compiled loop
        a = np.array([[0.5, 0.5]])
        Gp, Up, Vp = np.ones((1, 2, 2)), np.zeros((1, 2)), np.zeros((1, 2))
        codes = rows_kernel(a, a.copy(), np.array([[[0.0, 1.0], [1.0, 0.0]]]), np.zeros(1, dtype=np.int64),
                            Gp, Up, Vp, np.uint64(1000))
        if codes[0] != 1 or not np.array_equal(Gp[0], np.diag(a[0])):
            return "the compiled probe failed"
        # the forest test: a perfect matching is a forest, the complete 2 x 2 graph has a cycle
        if _compiled.forest_kernel(np.array([np.eye(2, dtype=bool), np.ones((2, 2), dtype=bool)])).tolist() != [True, False]:
            return "the compiled forest probe failed"
        return rows_kernel
    except Exception as e:  # noqa: BLE001 — numba missing or refusing: use the per-problem loop
        return f"{type(e).__name__}: {e}"


def _kernel():
    global _COMPILED, _COMPILED_WHY
    if _COMPILED is None:
        k = _build_compiled()
        _COMPILED, _COMPILED_WHY = (False, k) if isinstance(k, str) else (k, "")
    return _COMPILED


def using_compiled() -> tuple[bool, str]:
    """(True, "") when :func:`emd_rows` runs compiled; else (False, the reason)."""
    return bool(_kernel()), _COMPILED_WHY


def use_compiled(flag: bool) -> None:
    """Turn the compiled :func:`emd_rows` off (False) or back on (True: resolved again at next use)."""
    global _COMPILED, _COMPILED_WHY
    _COMPILED, _COMPILED_WHY = (None, "") if flag else (False, "turned off by use_compiled(False)")


def emd_rows(P: np.ndarray, Q: np.ndarray, M: np.ndarray, rows: np.ndarray, G: np.ndarray,
             U: np.ndarray | None = None, V: np.ndarray | None = None, max_iter: int = 100000) -> None:
    """Exact OT for the problems ``rows`` of a batch, written into ``G[rows]`` (and ``U[rows]``, ``V[rows]``).

    Each problem k is :func:`emd` (P[k], Q[k], M[k]) (equal masses); ``G[k]`` gets its plan, U / V its
    dual potentials.  Shapes: P (B, n), Q (B, m), M (B, n, m), rows (R,) int, G (B, n, m), U (B, n),
    V (B, m), all float64; G, U and V C-contiguous.  Raises ``ValueError`` naming a bad shape or row,
    ``RuntimeError`` naming the problem shape when the solver does not report an optimum.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return
    B, n, m = M.shape
    for name, x, shape in (("P", P, (B, n)), ("Q", Q, (B, m)), ("G", G, (B, n, m)), ("U", U, (B, n)), ("V", V, (B, m))):
        if x is not None and x.shape != shape:
            raise ValueError(f"emd_rows: {name} has shape {x.shape}, expected {shape} for M of shape {M.shape}")
    if rows.min() < 0 or rows.max() >= B:
        raise ValueError(f"emd_rows: rows must lie in [0, {B}), got {rows.min()}..{rows.max()}")
    kernel = _kernel()
    if kernel:
        for name, x in (("G", G), ("U", U), ("V", V)):
            if x is not None and not (x.flags.c_contiguous and x.dtype == np.float64):
                raise ValueError(f"emd_rows writes into {name}: it must be a C-contiguous float64 array")
        if U is None:
            U = np.empty(P.shape)
        if V is None:
            V = np.empty(Q.shape)
        codes = kernel(np.ascontiguousarray(P, dtype=float), np.ascontiguousarray(Q, dtype=float),
                       np.ascontiguousarray(M, dtype=float), rows, G, U, V, np.uint64(max_iter))
        bad = np.flatnonzero(codes != 1)
        if bad.size:
            raise RuntimeError(f"exact OT solver failed (code {int(codes[bad[0]])}) on a {M.shape[1:]} problem")
        return
    solve = _SOLVER or _resolve()
    for k in rows.tolist():
        Gk, _c, uk, vk, code = solve(P[k], Q[k], M[k], max_iter, 1)
        if code != 1:
            raise RuntimeError(f"exact OT solver failed (code {code}) on a {M[k].shape} problem")
        G[k] = Gk
        if U is not None:
            U[k] = uk
        if V is not None:
            V[k] = vk
