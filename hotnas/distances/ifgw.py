r"""Cell-level distance "iFGW": fused Gromov-Wasserstein on node features and information flow.

.. math::

    d_{cell}(c, c') = \min_{T \in \Pi(a, a')} (1 - \alpha) \langle M, T\rangle
        + \alpha \sum_{u,u',v,v'} (\Phi_{uu'} - \Phi'_{vv'})^2 T_{uv} T_{u'v'}

with M the pointwise cost of :func:`hotnas.distances.features.feature_cost_matrix` and Phi the
directed information-flow matrices (spec 3.2) [derived — a reconstruction, not the paper's formula].

Solver.  The objective is that of POT's ``ot.gromov.fused_gromov_wasserstein2(M, Phi, Phi', a, a',
loss_fun='square_loss', symmetric=False, alpha=alpha)``, minimised by the same conditional-gradient
(Frank-Wolfe) iteration: linearise (gradient ``0.5 (grad + grad of the transposed problem)``), solve
the exact OT linear program, exact line search on the quadratic segment, stop when the objective
changes by less than ``tol_abs`` or ``tol_rel``.  :func:`fgw_cg_batch` runs this iteration for many
pairs at once (numpy batched matrix products; the exact LP per pair by POT's network simplex
``emd_c``), which removes POT's per-call Python overhead.

Multi-start (spec 9.4): each pair is put in a canonical orientation (by cell hash) and CG is run
from the product plan a a'^T on the problem and on its transpose (the transposed problem has the
same objective, but the LP's tie-breaking, hence the local optimum, can differ) and from the plan
``emd(a, a', M)``; the minimum is returned.  The set of runs does not depend on the order of the
two cells, so d(c, c') == d(c', c) bit for bit, and the value is never above POT's single
default-start run in either orientation (that run is one of ours).  ``starts`` chooses the runs
("product", "emd", "product_t", "emd_t"; "_t" = transposed problem); ``both_directions=True``
adds the transposed twin of every start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ot.lp.emd_wrap import emd_c

from ..cells import Cell
from .features import (
    N_STRUCT,
    CellFeatures,
    FeatureOptions,
    OpCost,
    _op_cost_fn,
    cell_features,
    feature_cost_matrix,
)

__all__ = [
    "IFGWOptions",
    "fgw_cg_batch",
    "ifgw_pairs",
    "cell_distance",
    "cell_distance_pot",
    "features_cached",
    "fgw_objective",
]

_EMD_MAX_ITER = 100000
_START_KINDS = ("product", "emd", "product_t", "emd_t")


@dataclass(frozen=True)
class IFGWOptions:
    """Options of the cell-level distance (every reconstructed choice is an option, spec 0)."""

    alpha: float = 0.5
    lambda_op: float = 0.5
    op_cost: Any = None  # None (default table), dict {(o, o'): cost} or callable
    features: FeatureOptions = field(default_factory=FeatureOptions)
    starts: tuple[str, ...] = ("product", "product_t", "emd")
    both_directions: bool = False
    max_iter: int = 10000
    tol_rel: float = 1e-9
    tol_abs: float = 1e-9

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {self.alpha}")
        if not 0.0 <= self.lambda_op <= 1.0:
            raise ValueError(f"lambda_op must lie in [0, 1], got {self.lambda_op}")
        bad = [s for s in self.starts if s not in _START_KINDS]
        if bad or not self.starts:
            raise ValueError(f"starts must be a non-empty subset of {_START_KINDS}, got {self.starts}")

    @classmethod
    def make(cls, **kw: Any) -> "IFGWOptions":
        """Build from flat keyword options; feature options (flow, symmetrise, masses, ...) are routed."""
        fkeys = {"flow", "symmetrise", "unreachable", "masses", "op_weights"}
        fkw = {k: kw.pop(k) for k in list(kw) if k in fkeys}
        feats = kw.pop("features", None)
        if feats is None:
            feats = FeatureOptions.make(**fkw)
        elif fkw:
            raise ValueError("give either features=FeatureOptions(...) or flat feature options, not both")
        if "starts" in kw:
            kw["starts"] = tuple(kw["starts"])
        return cls(features=feats, **kw)

    def key(self) -> tuple:
        oc = self.op_cost
        if isinstance(oc, dict):
            oc = tuple(sorted(oc.items()))
        elif callable(oc):
            oc = getattr(oc, "__qualname__", repr(oc))
        return (self.alpha, self.lambda_op, oc, self.features, self.starts, self.both_directions,
                self.max_iter, self.tol_rel, self.tol_abs)


# ------------------------------------------------------------------------------------------------
# per-cell precomputations, cached by (cell hash, feature options)
_FEATURE_CACHE: dict[tuple[str, FeatureOptions], CellFeatures] = {}


def features_cached(cell: Cell, options: FeatureOptions) -> CellFeatures:
    key = (cell.canonical_hash, options)
    f = _FEATURE_CACHE.get(key)
    if f is None:
        if len(_FEATURE_CACHE) > 200_000:
            _FEATURE_CACHE.clear()
        f = cell_features(cell, options)
        _FEATURE_CACHE[key] = f
    return f


# ------------------------------------------------------------------------------------------------
def _emd(a: np.ndarray, b: np.ndarray, M: np.ndarray) -> np.ndarray:
    G, _cost, _u, _v, code = emd_c(a, b, M, _EMD_MAX_ITER, 1)
    if code != 1:  # 1 = OPTIMAL in POT's network simplex
        raise RuntimeError(f"exact OT solver failed (code {code}) on a {M.shape} problem")
    return G


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
) -> tuple[np.ndarray, np.ndarray]:
    r"""Conditional gradient for B fused-GW problems of one shape, in lock step.

    Minimises :math:`(1-\alpha)\langle M_b, T\rangle + \alpha \sum (C1_{b,ik} - C2_{b,jl})^2 T_{ij} T_{kl}`
    over couplings of (p_b, q_b), from G0_b, exactly as POT's ``fused_gromov_wasserstein`` with
    ``loss_fun='square_loss', symmetric=False, armijo=False`` (same linearisation, LP, line search
    and stopping rule).

    Args:
        M: (B, n, m) feature costs; C1: (B, n, n); C2: (B, m, m); p: (B, n); q: (B, m); G0: (B, n, m).

    Returns:
        values (B,) — the objective recomputed at the final plans — and plans (B, n, m).
    """
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
    # square loss: constC = f1(C1) p 1^T + 1 q^T f2(C2)^T (POT init_matrix), and the same for C^T
    constC = (C1sq @ p[:, :, None]) + np.swapaxes(C2sq @ q[:, :, None], 1, 2)
    constCt = (np.swapaxes(C1sq, 1, 2) @ p[:, :, None]) + np.swapaxes(np.swapaxes(C2sq, 1, 2) @ q[:, :, None], 1, 2)
    cs = constC + constCt
    pp = np.ascontiguousarray(p, dtype=float)
    qs = np.ascontiguousarray(q * (p.sum(1) / q.sum(1))[:, None])  # as ot.emd rescales b
    hG = C1 @ G @ C2T  # C1 G C2^T
    cost = (Mlin * G).sum((1, 2)) + alpha * ((constC - 2.0 * hG) * G).sum((1, 2))
    running = np.ones(B, dtype=bool)
    it = 0
    while True:
        it += 1
        # gradient 0.5 (grad + grad of the transposed problem) = tens(G) + tens_t(G)
        Mi = Mlin + alpha * (cs - 2.0 * (hG + C1T @ G @ C2))
        Gc = G.copy()
        for k in np.flatnonzero(running).tolist():
            Gk, _c, _u, _v, code = emd_c(pp[k], qs[k], Mi[k], _EMD_MAX_ITER, 1)
            if code != 1:
                raise RuntimeError(f"exact OT solver failed (code {code}) on a {Mi[k].shape} problem")
            Gc[k] = Gk
        D = Gc - G
        dD = C1 @ D @ C2T
        a = -2.0 * alpha * (dD * D).sum((1, 2))
        b = (Mlin * D).sum((1, 2)) - 2.0 * alpha * ((dD * G).sum((1, 2)) + (hG * D).sum((1, 2)))
        # POT's solve_1d_linesearch_quad
        pos = a > 0
        step = np.where(pos, np.clip(-b / np.where(pos, 2.0 * a, 1.0), 0.0, 1.0), np.where(a + b < 0, 1.0, 0.0))
        step[~running] = 0.0
        new = cost + a * step * step + b * step
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
            keep = running
            ids, G, Mlin, C1, C2, C1T, C2T, constC, cs, pp, qs, hG, cost = (
                x[keep] for x in (ids, G, Mlin, C1, C2, C1T, C2T, constC, cs, pp, qs, hG, cost)
            )
            running = np.ones(ids.size, dtype=bool)
    G_out[ids] = G
    return fgw_values(M, C1o, C2o, p, q, alpha, G_out), G_out


def fgw_values(M, C1, C2, p, q, alpha: float, G: np.ndarray) -> np.ndarray:
    """Batched FGW objective (1 - alpha) <M, G> + alpha sum (C1_ik - C2_jl)^2 G_ij G_kl, for plans G
    with marginals p, q (the square loss expanded as POT's ``gwloss``)."""
    C1sq, C2sq = C1 * C1, C2 * C2
    constC = (C1sq @ p[:, :, None]) + np.swapaxes(C2sq @ q[:, :, None], 1, 2)
    tens = constC - 2.0 * (C1 @ G @ np.swapaxes(C2, 1, 2))
    return (1.0 - alpha) * (M * G).sum((1, 2)) + alpha * (tens * G).sum((1, 2))


# ------------------------------------------------------------------------------------------------
def _oriented(fa: CellFeatures, fb: CellFeatures) -> bool:
    """True when the pair must be swapped into canonical orientation."""
    return fa.hash > fb.hash


def ifgw_pairs(
    feats_a: Sequence[CellFeatures],
    feats_b: Sequence[CellFeatures],
    options: IFGWOptions | None = None,
    return_plans: bool = False,
) -> np.ndarray | tuple[np.ndarray, list[np.ndarray]]:
    """d_cell for the element-wise pairs (feats_a[i], feats_b[i]), batched by problem shape.

    Pairs with equal hashes are 0 without solving.  With ``return_plans`` also returns, per pair,
    the optimal plan in the orientation (a_i rows, b_i columns).
    """
    opt = options or IFGWOptions()
    P = len(feats_a)
    if len(feats_b) != P:
        raise ValueError(f"need as many left as right cells, got {P} and {len(feats_b)}")
    out = np.zeros(P)
    plans: list[np.ndarray] = [None] * P  # type: ignore[list-item]
    # canonical orientation and grouping by shape
    groups: dict[tuple[int, int], list[tuple[int, CellFeatures, CellFeatures, bool]]] = {}
    for i, (fa, fb) in enumerate(zip(feats_a, feats_b)):
        if fa.hash == fb.hash:
            if return_plans:
                plans[i] = np.diag(fa.masses) if fa.n == fb.n else None  # type: ignore[call-overload]
            continue
        swap = _oriented(fa, fb)
        x, y = (fb, fa) if swap else (fa, fb)
        groups.setdefault((x.n, y.n), []).append((i, x, y, swap))
    if not groups:
        return (out, plans) if return_plans else out
    # operation vocabulary -> cost table
    vocab: dict[str, int] = {}
    for items in groups.values():
        for _, x, y, _ in items:
            for o in x.ops + y.ops:
                vocab.setdefault(o, len(vocab))
    fn = _op_cost_fn(opt.op_cost)
    names = list(vocab)
    table = np.array([[fn(a, b) for b in names] for a in names], dtype=float)
    lam = opt.lambda_op
    for (n, m), items in groups.items():
        idx = np.array([it[0] for it in items])
        oa = np.array([[vocab[o] for o in it[1].ops] for it in items])
        ob = np.array([[vocab[o] for o in it[2].ops] for it in items])
        Sa = np.stack([it[1].struct for it in items])
        Sb = np.stack([it[2].struct for it in items])
        C1 = np.stack([it[1].flow for it in items])
        C2 = np.stack([it[2].flow for it in items])
        pa = np.stack([it[1].masses for it in items])
        pb = np.stack([it[2].masses for it in items])
        M = lam * table[oa[:, :, None], ob[:, None, :]] + (1.0 - lam) / N_STRUCT * np.abs(
            Sa[:, :, None, :] - Sb[:, None, :, :]
        ).sum(-1)
        vals, G = _multistart(M, C1, C2, pa, pb, opt)
        out[idx] = vals
        if return_plans:
            for k, it in enumerate(items):
                plans[it[0]] = G[k].T if it[3] else G[k]
    return (out, plans) if return_plans else out


def _start_plans(M: np.ndarray, p: np.ndarray, q: np.ndarray, kind: str) -> np.ndarray:
    if kind == "product":
        return p[:, :, None] * q[:, None, :]
    qs = q * (p.sum(1) / q.sum(1))[:, None]
    Mc = np.ascontiguousarray(M)
    return np.stack([_emd(p[k], qs[k], Mc[k]) for k in range(M.shape[0])])


def _multistart(M, C1, C2, p, q, opt: IFGWOptions) -> tuple[np.ndarray, np.ndarray]:
    """Minimum over the CG runs named in ``opt.starts`` ("_t": on the transposed problem)."""
    best_v = np.full(M.shape[0], np.inf)
    best_G = np.zeros_like(M)
    kinds = list(dict.fromkeys(opt.starts))
    if opt.both_directions:
        kinds += [k + "_t" for k in kinds if not k.endswith("_t") and k + "_t" not in kinds]
    Mt = np.swapaxes(M, 1, 2)
    for kind in kinds:
        transposed = kind.endswith("_t")
        base = kind[:-2] if transposed else kind
        if transposed:
            G0 = _start_plans(Mt, q, p, base)
            v, G = fgw_cg_batch(Mt, C2, C1, q, p, opt.alpha, G0, opt.max_iter, opt.tol_rel, opt.tol_abs)
            G = np.swapaxes(G, 1, 2)
        else:
            G0 = _start_plans(M, p, q, base)
            v, G = fgw_cg_batch(M, C1, C2, p, q, opt.alpha, G0, opt.max_iter, opt.tol_rel, opt.tol_abs)
        better = v < best_v
        best_v[better] = v[better]
        best_G[better] = G[better]
    return best_v, best_G


# ------------------------------------------------------------------------------------------------
def cell_distance(c1: Cell, c2: Cell, **options: Any) -> float:
    """iFGW distance between two cells (exactly symmetric, 0 for isomorphic cells).

    Options: alpha (0.5), lambda_op (0.5), op_cost (table), flow, symmetrise, unreachable, masses,
    op_weights, starts, both_directions, max_iter, tol_rel, tol_abs — see :class:`IFGWOptions`.
    """
    opt = options.pop("_options", None) or IFGWOptions.make(**options)
    f1 = features_cached(c1, opt.features)
    f2 = features_cached(c2, opt.features)
    return float(ifgw_pairs([f1], [f2], opt)[0])


def cell_distance_pot(c1: Cell, c2: Cell, G0: str | np.ndarray | None = None, **options: Any) -> tuple[float, np.ndarray]:
    """Reference: one POT ``fused_gromov_wasserstein2`` call (single start, given orientation).

    ``G0``: None / "product" (POT's default start), "emd" (plan of emd(a, a', M)) or an array.
    Returns (value, plan); used by tests and the benchmark to check :func:`cell_distance`.
    """
    import ot

    opt = options.pop("_options", None) or IFGWOptions.make(**options)
    f1 = features_cached(c1, opt.features)
    f2 = features_cached(c2, opt.features)
    M = feature_cost_matrix(f1, f2, opt.lambda_op, opt.op_cost)
    if isinstance(G0, str):
        G0 = None if G0 == "product" else ot.emd(f1.masses, f2.masses, M)
    val, log = ot.gromov.fused_gromov_wasserstein2(
        M, f1.flow, f2.flow, f1.masses, f2.masses, loss_fun="square_loss", symmetric=False,
        alpha=opt.alpha, G0=G0, log=True, max_iter=opt.max_iter, tol_rel=opt.tol_rel, tol_abs=opt.tol_abs,
    )
    return float(val), log["T"]


def fgw_objective(c1: Cell, c2: Cell, T: np.ndarray, **options: Any) -> float:
    """The iFGW objective of plan T (rows: c1's canonical nodes, columns: c2's)."""
    opt = options.pop("_options", None) or IFGWOptions.make(**options)
    f1 = features_cached(c1, opt.features)
    f2 = features_cached(c2, opt.features)
    M = feature_cost_matrix(f1, f2, opt.lambda_op, opt.op_cost)
    L = (f1.flow[:, :, None, None] - f2.flow[None, None, :, :]) ** 2  # (i, k, j, l)
    quad = np.einsum("ikjl,ij,kl->", L, T, T)
    return float((1 - opt.alpha) * (M * T).sum() + opt.alpha * quad)


def as_cell(x: Any, space: Any = None) -> Cell:
    """A Cell from a Cell, a network of one repeated cell, or an architecture string of such a space."""
    from ..cells import Network
    from . import as_network

    if isinstance(x, Cell):
        return x
    net = x if isinstance(x, Network) else as_network(x, space)
    cells = net.unique_cells()
    if len(cells) != 1:
        raise ValueError(f"ifgw compares single cells; this network has {len(cells)} distinct cells (use method='hotnn')")
    return next(iter(cells.values()))


def _front(a: Any, b: Any, space: Any = None, **options: Any) -> float:
    return cell_distance(as_cell(a, space), as_cell(b, space), **options)
