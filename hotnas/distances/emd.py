"""One exact OT solve, ``emd(a, b, M) -> (plan, cost, u, v, code)``, fast where POT allows.

The distances call the network simplex hundreds of thousands of times on tiny problems, where POT's
public :func:`ot.emd` spends more time in Python argument checks than in the solve. POT's compiled
entry point ``ot.lp.emd_wrap.emd_c`` skips them, but it is private API: it is used only when it
imports and answers a closed-form probe (two points, cost 1 off the diagonal, plan diag(1/2), cost 0)
at first use; otherwise every call goes through the public :func:`ot.emd` with ``log=True``. Both
return the same plan, cost, dual potentials and result code (1 = optimal).
"""

from __future__ import annotations

import numpy as np

__all__ = ["emd", "using_private_solver"]

_SOLVER = None  # resolved on first use


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
