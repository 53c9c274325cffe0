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
same objective, but the LP's tie-breaking, hence the local optimum, can differ), from the plan
``emd(a, a', M)`` and from ``emd(a, a', M_struct)`` (structural part of M only: it finds the
isomorphism of equal structures whatever the operations, which alpha = 1 needs); the minimum is
returned.  The set of runs does not depend on the order of the
two cells, so d(c, c') == d(c', c) bit for bit, and the value is never above POT's single
default-start run in either orientation (that run is one of ours, unless the lower bound below
already proves the value optimal).  ``starts`` chooses the runs
("product", "emd", "struct", "entropic" and their "_t" twins on the transposed problem);
``both_directions=True`` adds the transposed twin of every start.

Stopping at a lower bound (``skip_at_bound=True``; uniform masses): a pair takes no more starts
once its best value reaches

.. math::

    (1-\alpha) \min_{T \in \Pi(a, a')} \langle M, T\rangle + \alpha\, \mathrm{LB}_{GW}(\Phi, \Phi'),

the first term the value of the "emd" start plan (computed anyway), the second
:func:`~hotnas.distances.fgw_cg.gw_lower_bound` (row and column 1-D transport bounds).  No start can
go below it, so the minimum is unchanged (to the test's 1e-12; on the NB201 graph 5,748 of 187,500
edges differ, by at most 1.7e-16).  With the bound the cheaper starts run first and the product run
(network simplex, tracked for its twin) only on the pairs still open: on the NB201 mutation graph
the bound closes 72 % of the square pairs after the "emd" start, no non-square pair, and the CG runs
fall from 294,854 to 231,126, the exact LPs from 571,412 to 445,092 (assignment solves 210,833 ->
160,003; counted once by wrapping the solver's calls), the whole graph's CPU by about a fifth and ``ACCURATE_STARTS``' by half or more.  It is
not the default: values that move by 1e-16 are enough to change the path of a search that ranks
by them (HOTNAS's knowledge-gradient ties: on one of five digits seeds its queries differ from the
15th on), so the default keeps every published run bit-reproducible from its saved config.
[engineering choice, exact to 1e-12]

Entropic starts (issue 17, ``starts=ACCURATE_STARTS``): CG from a cheap entropic plan, one per
``entropic_epsilon`` (default 0.01, 0.02 and 0.05; 20 mirror-descent steps of 20 warm-started
Sinkhorn iterations each, :func:`entropic_start`).  The vertex starts above miss the lowest local
optimum on about 7 % of NB201 pairs.  With these starts the value is <= min(POT's CG in both
orientations, POT's converged entropic FGW at eps 0.01 and 0.05 rounded and polished by CG) on
1000 of 1000 pairs of the sample they were chosen on (seed 400), on 1000 of 1000 pairs of a
disjoint sample (seed 200, against 998 with the earlier (0.01, 0.05) x 10 Sinkhorn iterations) and
on 999 of 1000 of a third (seed 600; ``python -m experiments.studies.optimum_rate``), 198 of 200 of
the slow test's sample: 3,197 of 3,200 pairs (99.91 %), every miss a 5-node vs 8-node pair.  They cost about 3.5x the CPU of the vertex starts
(they are pure batched tensor work, cheap on a GPU), so the default stays ``FAST_STARTS`` (the values
every published figure of this project was measured with); ``starts=ACCURATE_STARTS`` adds them.
[engineering choice, chosen by measurement]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
from .emd import emd_rows

from sdot.validation import finite, positive, positive_int

from ..cells import Cell
from .fgw_cg import (  # noqa: F401  (re-exported: the kernel lived here)
    _EMD_MAX_ITER,
    _const_c,
    _uniform,
    assignment_plans,
    _unique_lp,
    entropic_start,
    fgw_cg_batch,
    fgw_values,
    gw_lower_bound,
    round_plan,
    sorted_rows_cols,
)
from .features import (
    N_STRUCT,
    CellFeatures,
    FeatureOptions,
    _op_cost_fn,
    cell_features,
    cell_features_many,
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
    "entropic_start",
    "round_plan",
    "FAST_STARTS",
    "ACCURATE_STARTS",
]

#: the vertex starts only (the default): about 3.5x faster on the CPU than ACCURATE_STARTS
FAST_STARTS = ("product", "product_t", "emd", "struct")
#: the vertex starts plus the entropic starts: lower optima on about 7 % of NB201 pairs, about 3.5x the CPU
ACCURATE_STARTS = FAST_STARTS + ("entropic",)
_CHUNK = 1024  # pairs per batch: the batched temporaries stay in cache (1024 and 512 measured ~7 % faster than 2048)
_BOUND_TOL = 1e-12  # a pair is solved when its best value is within this of the lower bound
_START_KINDS = ("product", "emd", "struct", "entropic", "product_t", "emd_t", "struct_t", "entropic_t")


@dataclass(frozen=True)
class IFGWOptions:
    """Options of the cell-level distance (every reconstructed choice is an option, spec 0)."""

    alpha: float = 0.5
    lambda_op: float = 0.5
    op_cost: Any = None  # None (default table), dict {(o, o'): cost} or callable
    features: FeatureOptions = field(default_factory=FeatureOptions)
    starts: tuple[str, ...] = FAST_STARTS
    both_directions: bool = False
    max_iter: int = 10000
    tol_rel: float = 1e-9
    tol_abs: float = 1e-9
    lp: str = "auto"  # "auto": assignment solver for runs without a POT twin when exact; "emd": always emd
    entropic_epsilon: float | tuple[float, ...] = (0.01, 0.02, 0.05)  # "entropic" starts: one per regularisation
    entropic_iters: int = 20  # "entropic" start: mirror-descent steps, each one Sinkhorn projection
    sinkhorn_iters: int = 20  # "entropic" start: Sinkhorn iterations per projection (warm-started)
    skip_at_bound: bool = False  # stop a pair's starts at the lower bound: faster, same minimum to 1e-12 (not bitwise)
    backend: str = "numpy"  # "numpy" (default) or "torch" (batched algebra in torch; LPs on the host)
    device: str | None = None  # torch device ("cpu", "cuda", "cuda:1"); None = cpu

    def __post_init__(self) -> None:
        if self.lp not in ("auto", "emd"):
            raise ValueError(f"lp must be 'auto' or 'emd', got {self.lp!r}")
        for name in ("alpha", "lambda_op"):
            if not 0.0 <= finite(name, getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        from .fgw_torch import check_device

        check_device(self.backend, self.device)
        eps = self.entropic_epsilon
        many = isinstance(eps, (tuple, list))
        if many and not eps:
            raise ValueError(f"entropic_epsilon must be a number > 0 or a tuple of them, got {eps!r}")
        eps_t = tuple(positive("entropic_epsilon", e) for e in (eps if many else (eps,)))
        object.__setattr__(self, "entropic_epsilon", eps_t if many else eps_t[0])
        for name in ("entropic_iters", "sinkhorn_iters"):
            v = getattr(self, name)
            if isinstance(v, float):  # a positive integer, not 2.0
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
            positive_int(name, v)
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
                self.max_iter, self.tol_rel, self.tol_abs, self.lp, self.entropic_epsilon, self.entropic_iters,
                self.sinkhorn_iters, self.backend, self.device, self.skip_at_bound)


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


def features_cached_many(cells: Sequence[Cell], options: FeatureOptions) -> list[CellFeatures]:
    """:func:`features_cached` of many cells; the missing ones computed together (:func:`cell_features_many`)."""
    keys = [(c.canonical_hash, options) for c in cells]
    todo = {k: c for k, c in zip(keys, cells) if k not in _FEATURE_CACHE}
    if todo:
        if len(_FEATURE_CACHE) + len(todo) > 200_000:
            _FEATURE_CACHE.clear()
        _FEATURE_CACHE.update(zip(todo, cell_features_many(list(todo.values()), options)))
    return [_FEATURE_CACHE[k] for k in keys]


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
    the optimal plan in the orientation (a_i rows, b_i columns) (None for equal hashes).
    """
    opt = options or IFGWOptions()
    P = len(feats_a)
    if len(feats_b) != P:
        raise ValueError(f"need as many left as right cells, got {P} and {len(feats_b)}")
    out = np.zeros(P)
    plans: list[np.ndarray] = [None] * P  # type: ignore[list-item]
    # distinct cells (first seen, a and b interleaved), pairs as indices into them; comprehensions
    # and dict.fromkeys instead of a loop over the pairs (a mutation graph has ~10^5 of them)
    ha = [f.hash for f in feats_a]
    hb = [f.hash for f in feats_b]
    by_h = dict(zip(hb, feats_b))
    by_h.update(zip(ha, feats_a))  # one hash, one cell: isomorphic cells have equal features
    first = {h: by_h[h] for h in dict.fromkeys(chain.from_iterable(zip(ha, hb)))}
    where = {h: i for i, h in enumerate(first)}
    cells: list[CellFeatures] = list(first.values())
    ia = np.fromiter(map(where.__getitem__, ha), dtype=np.int64, count=P)
    ib = np.fromiter(map(where.__getitem__, hb), dtype=np.int64, count=P)
    if P == 0:
        return (out, plans) if return_plans else out
    # canonical orientation: smaller hash first
    rank = np.empty(len(cells), dtype=np.int64)
    rank[np.argsort(np.array([c.hash for c in cells]), kind="stable")] = np.arange(len(cells))
    swap = rank[ia] > rank[ib]
    x_all = np.where(swap, ib, ia)
    y_all = np.where(swap, ia, ib)
    todo = np.flatnonzero(ia != ib)
    if todo.size == 0:
        return (out, plans) if return_plans else out
    # per-size banks of stacked features and a shared operation-cost table
    vocab: dict[str, int] = {}
    for c in cells:
        for o in c.ops:
            if o not in vocab:
                vocab[o] = len(vocab)
    fn = _op_cost_fn(opt.op_cost)
    names = list(vocab)
    table = np.array([[fn(a, b) for b in names] for a in names], dtype=float)
    sizes = np.array([c.n for c in cells])
    pos = np.empty(len(cells), dtype=np.int64)
    bank: dict[int, tuple[np.ndarray, ...]] = {}
    for n in np.unique(sizes).tolist():
        members = np.flatnonzero(sizes == n)
        pos[members] = np.arange(members.size)
        mc = [cells[i] for i in members.tolist()]
        bank[n] = (
            np.stack([c.struct for c in mc]),
            np.stack([c.flow for c in mc]),
            np.stack([c.masses for c in mc]),
            np.array([[vocab[o] for o in c.ops] for c in mc], dtype=np.int64),
        )
        if opt.skip_at_bound:  # per distinct cell, for the lower bound
            bank[n] += sorted_rows_cols(bank[n][1])
    lam = opt.lambda_op
    xs, ys = x_all[todo], y_all[todo]
    shape_key = sizes[xs] * 4096 + sizes[ys]
    order = np.argsort(shape_key, kind="stable")
    keys_sorted = shape_key[order]
    bounds = np.flatnonzero(np.diff(keys_sorted)) + 1
    # each shape group in chunks: the batched temporaries of a chunk stay in cache (a 3x faster
    # product chain than one batch of 10,000 pairs); pairs are independent, so values are unchanged
    groups = [g[i : i + _CHUNK] for g in np.split(order, bounds) for i in range(0, g.size, _CHUNK)]
    for grp in groups:
        gx, gy = xs[grp], ys[grp]
        n, m = int(sizes[gx[0]]), int(sizes[gy[0]])
        Sa_b, Fa_b, Pa_b, Oa_b = bank[n][:4]
        Sb_b, Fb_b, Pb_b, Ob_b = bank[m][:4]
        px, py = pos[gx], pos[gy]
        sorted_ = (bank[n][4][px], bank[n][5][px], bank[m][4][py], bank[m][5][py]) if opt.skip_at_bound else None
        Sa, Sb = Sa_b[px], Sb_b[py]
        Mst = np.abs(Sa[:, :, None, :] - Sb[:, None, :, :]).sum(-1) / N_STRUCT
        M = lam * table[Oa_b[px][:, :, None], Ob_b[py][:, None, :]] + (1.0 - lam) * Mst
        vals, G = _multistart(M, Fa_b[px], Fb_b[py], Pa_b[px], Pb_b[py], opt, Mst, sorted_)
        pair_idx = todo[grp]
        out[pair_idx] = np.maximum(vals, 0.0)  # the objective is >= 0; clip round-off
        if return_plans:
            sw = swap[pair_idx]
            for k, i in enumerate(pair_idx.tolist()):
                plans[i] = G[k].T if sw[k] else G[k]
    return (out, plans) if return_plans else out


def _start_plans(M: np.ndarray, p: np.ndarray, q: np.ndarray, kind: str, assignment: bool = False) -> np.ndarray:
    if kind == "product":
        return p[:, :, None] * q[:, None, :]
    if assignment:
        G = np.zeros(M.shape)
        assignment_plans(M, np.arange(M.shape[0]), G)
        return G
    qs = q * p.sum(1)[:, None] / q.sum(1)[:, None]
    G = np.zeros(M.shape)
    emd_rows(p, qs, M, np.arange(M.shape[0]), G, max_iter=_EMD_MAX_ITER)
    return G


def _multistart(M, C1, C2, p, q, opt: IFGWOptions, Mst: np.ndarray | None = None,
                sorted_: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Minimum over the CG runs named in ``opt.starts`` ("_t": on the transposed problem).

    A transposed twin ("product_t" next to "product") is only run for pairs where the untransposed
    run met an LP with several optimal vertices: when every LP had a unique optimum, the twin
    follows the transposed path and reaches the same value (see :func:`fgw_cg_batch`).

    With ``opt.skip_at_bound`` (uniform masses, "emd" among the starts) a pair stops taking starts
    once its best value reaches the lower bound
    ``(1 - alpha) min_T <M, T> + alpha gw_lower_bound(C1, C2)`` (the first term is the value of the
    "emd" start plan, computed anyway): no start can go lower, so the minimum is unchanged (up to
    the 1e-12 tolerance of the test).
    """
    B = M.shape[0]
    best_v = np.full(B, np.inf)
    best_G = np.zeros_like(M)
    if opt.backend == "torch":
        from functools import partial

        from .fgw_torch import entropic_start_torch, fgw_cg_batch_torch

        cg = partial(fgw_cg_batch_torch, device=opt.device)
        ent = partial(entropic_start_torch, device=opt.device)
    else:
        cg, ent = fgw_cg_batch, entropic_start
    kinds = list(dict.fromkeys(opt.starts))
    if opt.both_directions:
        kinds += [k + "_t" for k in kinds if not k.endswith("_t") and k + "_t" not in kinds]
    Mt = np.swapaxes(M, 1, 2)
    uniform = _uniform(p) and _uniform(q)
    square_uniform = M.shape[1] == M.shape[2] and uniform

    def lp_mode(base: str) -> bool:
        # runs with a twin reproduce POT's path (network simplex); the others may use the faster
        # assignment solver where it is exact (square problems, uniform masses)
        return (base + "_t" not in kinds) and opt.lp == "auto" and square_uniform and base != "entropic"

    solved = np.zeros(B, dtype=bool)
    lower = None
    emd_plan = None
    if opt.skip_at_bound and uniform and "emd" in kinds:
        emd_plan = _start_plans(M, p, q, "emd", lp_mode("emd"))
        lower = (1.0 - opt.alpha) * (M * emd_plan).sum((1, 2)) + opt.alpha * gw_lower_bound(C1, C2, p, q, sorted_)
    degenerate: dict[tuple, np.ndarray] = {}
    started: list[tuple[bool, np.ndarray]] = []
    eps = opt.entropic_epsilon
    epsilons = np.asarray(eps if isinstance(eps, tuple) else (eps,), dtype=float)
    n_eps = epsilons.size
    # untransposed runs first, so that their twins know which pairs need them; with the bound, the
    # product start (network simplex, tracked for its twin) after the cheaper starts have solved
    # the pairs they can
    order = (lambda k: (k.endswith("_t"), k.startswith("product"))) if lower is not None else (lambda k: k.endswith("_t"))
    for kind in sorted(kinds, key=order):
        transposed = kind.endswith("_t")
        base = kind[:-2] if transposed else kind
        entropic = base == "entropic"
        if transposed:
            sel = degenerate.get(base, np.ones(B, dtype=bool)) & ~solved
            idx = np.flatnonzero(sel)
            if idx.size == 0:
                continue
            if entropic:  # every epsilon in one batch: pairs tiled epsilon-major
                rows = np.tile(idx, n_eps)
                G0 = ent(Mt[rows], C2[rows], C1[rows], q[rows], p[rows], opt.alpha, np.repeat(epsilons, idx.size),
                         opt.entropic_iters, opt.sinkhorn_iters)
            else:
                rows = idx
                Ms = Mt if base == "emd" else np.swapaxes(Mst, 1, 2)
                G0 = _start_plans(Ms[idx], q[idx], p[idx], base)
            v, G = cg(Mt[rows], C2[rows], C1[rows], q[rows], p[rows], opt.alpha, G0,
                      opt.max_iter, opt.tol_rel, opt.tol_abs)
            G = np.swapaxes(G, 1, 2)
        else:
            twin = base + "_t" in kinds
            asg = lp_mode(base)
            todo = np.flatnonzero(~solved)
            if todo.size == 0:
                break
            if entropic:
                idx = todo
                rows = np.tile(idx, n_eps)
                G0 = ent(M[rows], C1[rows], C2[rows], p[rows], q[rows], opt.alpha, np.repeat(epsilons, idx.size),
                         opt.entropic_iters, opt.sinkhorn_iters)
            else:
                if base == "emd" and emd_plan is not None:
                    G0 = emd_plan[todo]
                else:
                    G0 = _start_plans((Mst if base == "struct" else M)[todo], p[todo], q[todo], base, asg)
                # a run from a start already used with the same solver retraces that run: skip it
                # (the pairs still open only shrink, so earlier starts cover every row of ``todo``)
                fresh = np.ones(todo.size, dtype=bool)
                for used_asg, used in started:
                    if used_asg == asg:
                        fresh &= ~(used[todo] == G0).all((1, 2))
                full = np.zeros_like(M)
                full[todo] = G0
                started.append((asg, full))
                idx = todo[fresh]
                if idx.size == 0:
                    continue
                rows, G0 = idx, G0[fresh]
            res = cg(M[rows], C1[rows], C2[rows], p[rows], q[rows], opt.alpha, G0, opt.max_iter,
                     opt.tol_rel, opt.tol_abs, track=twin, assignment=asg)
            v, G = res[0], res[1]
            if twin:
                dg = np.ones(B, dtype=bool)
                dg[idx] = res[2].reshape(-1, idx.size).any(0)
                degenerate[base] = dg
        if entropic and n_eps > 1:  # best epsilon per pair
            v2 = v.reshape(n_eps, idx.size)
            k = v2.argmin(0)
            ar = np.arange(idx.size)
            v, G = v2[k, ar], G.reshape(n_eps, idx.size, *G.shape[1:])[k, ar]
        better = v < best_v[idx]
        best_v[idx[better]] = v[better]
        best_G[idx[better]] = G[better]
        if lower is not None:
            solved = best_v <= lower + _BOUND_TOL
    return best_v, best_G


# ------------------------------------------------------------------------------------------------
def cell_distance(c1: Cell, c2: Cell, **options: Any) -> float:
    """iFGW distance between two cells (exactly symmetric, 0 for isomorphic cells).

    Options: alpha (0.5), lambda_op (0.5), op_cost (table), flow, symmetrise, unreachable, masses,
    op_weights, starts, both_directions, skip_at_bound, max_iter, tol_rel, tol_abs — see :class:`IFGWOptions`.
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
