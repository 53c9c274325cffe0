r"""Batched conditional gradient for fused Gromov-Wasserstein (the kernel of :mod:`hotnas.distances.ifgw`).

.. math::

    \min_{T \in \Pi(p, q)} (1-\alpha)\langle M, T\rangle
        + \alpha \sum_{i,j,k,l} (C1_{ik} - C2_{jl})^2 T_{ij} T_{kl}

for B problems of one shape in lock step (numpy batched products; the exact LPs of an iteration by
POT's network simplex in one :func:`~hotnas.distances.emd.emd_rows` call, or by the assignment
solver where that is exact), exactly POT's
``fused_gromov_wasserstein`` iteration; plus the cheap entropic start plans and their rounding.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from .emd import emd_rows, using_compiled

__all__ = ["fgw_cg_batch", "assignment_plans", "fgw_values", "entropic_start", "round_plan", "gw_lower_bound", "sorted_rows_cols"]

_EMD_MAX_ITER = 100000
_DEGENERACY_TOL = 1e-12


def fgw_cg_batch(
    M: np.ndarray,
    C1: np.ndarray,
    C2: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    alpha: float,
    G0: np.ndarray,
    max_iter: int = 10000,
    tol_rel: float = 1e-9,
    tol_abs: float = 1e-9,
    track: bool = False,
    assignment: bool = False,
) -> tuple[np.ndarray, ...]:
    r"""Conditional gradient for B fused-GW problems of one shape, in lock step.

    Minimises :math:`(1-\alpha)\langle M_b, T\rangle + \alpha \sum (C1_{b,ik} - C2_{b,jl})^2 T_{ij} T_{kl}`
    over couplings of (p_b, q_b), from G0_b, exactly as POT's ``fused_gromov_wasserstein`` with
    ``loss_fun='square_loss', symmetric=False, armijo=False`` (same linearisation, LP, line search
    and stopping rule).

    Args:
        M: (B, n, m) feature costs; C1: (B, n, n); C2: (B, m, m); p: (B, n); q: (B, m); G0: (B, n, m).

    Returns:
        values (B,) — the objective recomputed at the final plans — and plans (B, n, m); with
        ``track`` also a (B,) flag: some LP on the way may have had several optimal vertices
        (more than n + m - 1 arcs with reduced cost <= 1e-12), so the run's path may depend on
        tie-breaking.  Without the flag every LP had a unique optimum and the run is determined
        by the problem alone (the transposed problem follows the transposed path).

    ``assignment=True`` (only for n = m with uniform masses, where the LP optima include the
    permutation matrices / n) solves each LP by scipy's ``linear_sum_assignment``: an exact
    optimum too, but possibly another vertex than POT's network simplex picks among ties.
    """
    if assignment and (M.shape[1] != M.shape[2] or not _uniform(p) or not _uniform(q)):
        raise ValueError("assignment=True needs square problems with uniform masses")
    B, n, m = M.shape
    G_out = np.array(G0, dtype=float, copy=True)
    v_out = np.zeros(B)
    if B == 0:
        return v_out, G_out
    C1o, C2o = C1, C2
    # state of the pairs still running (compacted from time to time)
    ids = np.arange(B)
    G = G_out.copy()
    Mlin = (1.0 - alpha) * M
    C1 = np.ascontiguousarray(C1, dtype=float)
    C2 = np.ascontiguousarray(C2, dtype=float)
    C1T = np.ascontiguousarray(np.swapaxes(C1, 1, 2))
    C2T = np.ascontiguousarray(np.swapaxes(C2, 1, 2))
    C1sq, C2sq = C1 * C1, C2 * C2
    # square loss: constC = f1(C1) p 1^T + 1 q^T f2(C2)^T (POT init_matrix), and the same for C^T.
    # Every expression below follows POT's operation order, so that in exact ties of the LP the
    # network simplex sees bit-identical costs and the run retraces POT's path.
    constC = constC0 = _const_c(C1sq, C2sq, p, q)
    constCt = _const_c(np.swapaxes(C1sq, 1, 2), np.swapaxes(C2sq, 1, 2), p, q)
    pp = np.ascontiguousarray(p, dtype=float)
    qs = np.ascontiguousarray(q * p.sum(1)[:, None] / q.sum(1)[:, None])  # as ot.emd rescales b
    hG = C1 @ G @ C2T  # C1 G C2^T
    cost = (Mlin * G).sum((1, 2)) + alpha * ((constC - 2.0 * hG) * G).sum((1, 2))
    running = np.ones(B, dtype=bool)
    degen = np.zeros(B, dtype=bool)
    degen_out = np.zeros(B, dtype=bool)
    if track:
        U, V = np.zeros((B, n)), np.zeros((B, m))
    it = 0
    while True:
        it += 1
        # gradient 0.5 (grad + grad of the transposed problem) = tens(G) + tens_t(G); POT forms
        # 0.5 * (2 x + 2 y), which equals x + y bit for bit (scaling by 2 and 0.5 is exact)
        Mi = Mlin + alpha * ((constC - 2.0 * hG) + (constCt - 2.0 * (C1T @ G @ C2)))
        Gc = G.copy()
        if assignment:
            assignment_plans(Mi, np.flatnonzero(running), Gc)
        else:
            emd_rows(pp, qs, Mi, np.flatnonzero(running), Gc, U if track else None, V if track else None, _EMD_MAX_ITER)
        if track:
            chk = np.flatnonzero(running & ~degen)
            if chk.size:
                degen[chk] = ~_unique_lp(Mi[chk] - U[chk][:, :, None] - V[chk][:, None, :])
        D = Gc - G
        dD = C1 @ D @ C2T
        a = -2.0 * alpha * (dD * D).sum((1, 2))
        b = (Mlin * D).sum((1, 2)) - 2.0 * alpha * ((dD * G).sum((1, 2)) + (hG * D).sum((1, 2)))
        # POT's solve_1d_linesearch_quad
        pos = a > 0
        step = np.where(pos, np.clip(-b / np.where(pos, 2.0 * a, 1.0), 0.0, 1.0), np.where(a + b < 0, 1.0, 0.0))
        step[~running] = 0.0
        new = cost + a * (step**2) + b * step
        absd = np.abs(new - cost)
        cost = np.where(running, new, cost)
        G += step[:, None, None] * D
        hG = C1 @ G @ C2T
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = absd / np.abs(new)
        done = running & ((rel < tol_rel) | (absd < tol_abs))
        if it >= max_iter:
            done = running.copy()
        running &= ~done
        n_run = int(running.sum())
        if n_run == 0:
            break
        if n_run <= 0.6 * running.size and running.size > 64:
            # write finished pairs back and compact the state
            fin = ~running
            G_out[ids[fin]] = G[fin]
            degen_out[ids[fin]] = degen[fin]
            keep = running
            ids, G, Mlin, C1, C2, C1T, C2T, constC, constCt, pp, qs, hG, cost, degen = (
                x[keep] for x in (ids, G, Mlin, C1, C2, C1T, C2T, constC, constCt, pp, qs, hG, cost, degen)
            )
            if track:
                U, V = U[keep], V[keep]
            running = np.ones(ids.size, dtype=bool)
    G_out[ids] = G
    degen_out[ids] = degen
    if track:
        return fgw_values(M, C1o, C2o, p, q, alpha, G_out, constC0), G_out, degen_out
    return fgw_values(M, C1o, C2o, p, q, alpha, G_out, constC0), G_out


def assignment_plans(M: np.ndarray, rows: np.ndarray, G: np.ndarray) -> None:
    """``G[k]`` = the permutation matrix / n of scipy's ``linear_sum_assignment(M[k])``, for k in ``rows``.

    An optimal plan of the LP with cost M[k] and uniform masses 1/n (Birkhoff); M (B, n, n), G (B, n, n).
    """
    if rows.size == 0:
        return
    n = M.shape[1]
    # one scipy call per problem (its tie-breaking is the reference), one scatter for all of them
    cols = np.array([linear_sum_assignment(M[k])[1] for k in rows.tolist()])
    G[rows] = 0.0
    G[rows[:, None], np.arange(n)[None, :], cols] = 1.0 / n


def _const_c(C1sq: np.ndarray, C2sq: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(C1^2 p) 1^T + 1 (q^T C2^2^T), computed as POT's ``init_matrix`` does (same products)."""
    # x 1^T and 1 y^T are exact copies of x and y, so broadcasting gives POT's bits without the products
    c1 = C1sq @ p[:, :, None]  # (B, n, 1)
    c2 = q[:, None, :] @ np.swapaxes(C2sq, 1, 2)  # (B, 1, m)
    return c1 + c2


def _uniform(p: np.ndarray) -> bool:
    return bool(np.all(p == p[:, :1]))


def _unique_lp(R: np.ndarray) -> np.ndarray:
    """(B,) True where the LP with reduced costs R (from an optimal dual) has a unique optimal plan.

    Every optimal plan lives on Z = {arcs with reduced cost <= 1e-12}; a transport plan on a forest
    is determined by its marginals, so the optimum is unique when Z is a forest, i.e. when
    |Z| = (n + m) - #components of the bipartite graph (rows, columns; Z).  The components of all B
    graphs are found in one call of scipy's ``connected_components`` on their disjoint union, or,
    where the compiled loops are in use (:func:`hotnas.distances.emd.using_compiled`), by a
    compiled union-find per graph (the same answers, tested).
    """
    B, n, m = R.shape
    Z = R <= _DEGENERACY_TOL
    if using_compiled()[0]:  # the same count by union-find, compiled
        from ._compiled import forest_kernel

        return forest_kernel(Z)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    big = n + m
    b, i, j = np.nonzero(Z)
    # node ids: pair b's rows are b*(n+m) + i, its columns b*(n+m) + n + j
    g = coo_matrix((np.ones(b.size, dtype=np.int8), (b * big + i, b * big + n + j)), shape=(B * big, B * big))
    _nc, labels = connected_components(g, directed=False)
    lab = np.sort(labels.reshape(B, big), axis=1)
    n_comp = 1 + (np.diff(lab, axis=1) != 0).sum(1)
    return Z.sum((1, 2)) == big - n_comp


def sorted_rows_cols(C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row of C (B, n, n) sorted, and each column sorted (as rows): the 1-D measures of
    :func:`gw_lower_bound`."""
    return np.sort(C, axis=2), np.sort(np.swapaxes(C, 1, 2), axis=2)


def gw_lower_bound(C1: np.ndarray, C2: np.ndarray, p: np.ndarray, q: np.ndarray, sorted_: tuple | None = None) -> np.ndarray:
    r"""Batched lower bound of the Gromov-Wasserstein term over all couplings (uniform masses).

    .. math::

        \min_{T \in \Pi(p, q)} \sum_{i,j,k,l} (C1_{ik} - C2_{jl})^2 T_{ij} T_{kl}
        \;\ge\; \max_{W \in \{W^r, W^c\}} \max\Big(\sum_i p_i \min_j W_{ij},\; \sum_j q_j \min_i W_{ij}\Big)

    with :math:`W^r_{ij} = W_2^2(\sum_k p_k \delta_{C1_{ik}}, \sum_l q_l \delta_{C2_{jl}})` (rows) and
    :math:`W^c` the same on columns: for fixed (i, j) the inner sum over (k, l) is a transport cost
    of T, hence >= the 1-D optimum :math:`W^r_{ij}` (Memoli 2011, the "third lower bound" argument;
    here without its LP, by row and column minima).  1-D W_2 by the quantile functions.

    Shapes: C1 (B, n, n), C2 (B, m, m), p (B, n), q (B, m), every p_b and q_b uniform -> (B,).
    ``sorted_``: optionally :func:`sorted_rows_cols` of C1 and of C2 (4 arrays), when the caller
    has them per distinct matrix.
    """
    B, n, _ = C1.shape
    m = C2.shape[1]
    for name, w in (("p", p), ("q", q)):
        bad = np.flatnonzero(~np.all(w == w[:, :1], axis=1)) if B else []
        if len(bad):
            raise ValueError(f"gw_lower_bound needs uniform masses; {name}[{bad[0]}] = {w[bad[0]].tolist()}")
    # the quantile functions of uniform n- and m-point measures are steps at k/n and l/m: on each
    # interval of the merged grid both are constant (sorted value floor(t n), floor(t m))
    t = np.unique(np.concatenate([np.arange(n + 1) / n, np.arange(m + 1) / m]))
    mid, length = (t[1:] + t[:-1]) / 2, np.diff(t)
    ix, iy = np.minimum((mid * n).astype(np.int64), n - 1), np.minimum((mid * m).astype(np.int64), m - 1)
    out = np.zeros(B)
    r1, c1, r2, c2 = sorted_ if sorted_ is not None else (*sorted_rows_cols(C1), *sorted_rows_cols(C2))
    for X, Y in ((r1, r2), (c1, c2)):
        xs, ys = X[:, :, ix], Y[:, :, iy]  # (B, n, L), (B, m, L)
        # sum_t len_t (x_t - y_t)^2 expanded: one batched product instead of a (B, n, m, L) array
        xl = xs * length
        W = (xl * xs).sum(2)[:, :, None] + ((ys * ys) @ length)[:, None, :] - 2.0 * (xl @ np.swapaxes(ys, 1, 2))
        out = np.maximum(out, np.maximum((p * W.min(2)).sum(1), (q * W.min(1)).sum(1)))
    return out


def fgw_values(M, C1, C2, p, q, alpha: float, G: np.ndarray, constC: np.ndarray | None = None) -> np.ndarray:
    """Batched FGW objective (1 - alpha) <M, G> + alpha sum (C1_ik - C2_jl)^2 G_ij G_kl, for plans G
    with marginals p, q (the square loss expanded as POT's ``gwloss``; ``constC`` as :func:`_const_c`
    gives it, when the caller has it)."""
    if constC is None:
        constC = _const_c(C1 * C1, C2 * C2, p, q)
    tens = constC - 2.0 * (C1 @ G @ np.swapaxes(C2, 1, 2))
    return (1.0 - alpha) * (M * G).sum((1, 2)) + alpha * (tens * G).sum((1, 2))


def entropic_start(M, C1, C2, p, q, alpha: float, epsilon: float = 0.05, iters: int = 20,
                   sinkhorn_iters: int = 10) -> np.ndarray:
    r"""A cheap entropic plan, batched: mirror descent on the FGW objective (POT's entropic FGW, solver "PGD").

    .. math::

        T_0 = p q^\top,\qquad T_{t+1} = \mathrm{Sinkhorn}_\varepsilon\big(p, q, \nabla F(T_t)\big),\qquad
        \nabla F(T) = (1-\alpha) M + \alpha\,(L_{C_1,C_2} \otimes T + L_{C_1^\top, C_2^\top} \otimes T)

    (the gradient CG linearises), each projection ``sinkhorn_iters`` scaling steps on
    :math:`K = \exp(-(\nabla F - \min \nabla F)/\varepsilon)`, then rounded onto the exact marginals
    (Altschuler, Weed, Rigollet 2017: scale rows and columns down, add the rank-one remainder) so
    that it is a feasible start for conditional gradient.  Shapes: M (B, n, m), C1 (B, n, n),
    C2 (B, m, m), p (B, n), q (B, m), epsilon a number or (B,) -> (B, n, m).  [engineering choice: a start, not a solver]
    """
    C2T, C1T = np.swapaxes(C2, 1, 2), np.swapaxes(C1, 1, 2)
    constC = _const_c(C1 * C1, C2 * C2, p, q)
    constCt = _const_c(C1T * C1T, C2T * C2T, p, q)
    Mlin = (1.0 - alpha) * M
    inv_eps = (1.0 / np.broadcast_to(np.asarray(epsilon, dtype=float), (M.shape[0],)))[:, None, None]
    T = p[:, :, None] * q[:, None, :]
    v = np.ones_like(q)
    for _ in range(iters):
        grad = Mlin + alpha * ((constC - 2.0 * (C1 @ T @ C2T)) + (constCt - 2.0 * (C1T @ T @ C2)))
        grad -= grad.min((1, 2), keepdims=True)
        # exponent capped at 700: K >= 1e-304 > 0 for any epsilon, so the scalings never divide by 0
        K = np.exp(np.minimum(grad * inv_eps, 700.0) * -1.0)
        # scaling iterations, warm-started from the previous projection's v (the kernels change
        # little between mirror steps)
        for _ in range(sinkhorn_iters):
            u = p / np.einsum("bij,bj->bi", K, v)
            v = q / np.einsum("bij,bi->bj", K, u)
        T = u[:, :, None] * K * v[:, None, :]
    return round_plan(T, p, q)


def round_plan(T: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Batched rounding of nearly feasible plans (B, n, m) onto the couplings of (p, q) (Altschuler et al.)."""
    T = T * np.minimum(p / np.maximum(T.sum(2), 1e-300), 1.0)[:, :, None]
    T = T * np.minimum(q / np.maximum(T.sum(1), 1e-300), 1.0)[:, None, :]
    ea, eb = p - T.sum(2), q - T.sum(1)
    tot = ea.sum(1)
    T = T + ea[:, :, None] * eb[:, None, :] / np.where(tot > 0, tot, 1.0)[:, None, None]
    return T
