"""Node features, operation costs and information-flow matrices of a cell (spec 2.4 and 3.2).

Every choice here is a reconstruction [derived] and therefore an option:

* **Operation mismatch** ``C_op(o, o')`` in [0, 1] from the operations' declared features
  (:mod:`hotnas.operations`, modelled on NASBOT's table): 0 for the same label, 0.2 between
  convolutions of one family with different kernel sizes, 0.5 between pooling types, a space's
  declared family / pair costs for its own operations, 1 otherwise; input/output labels match only
  themselves. Undeclared labels cost 1 and warn once. Override with ``op_cost=`` (a callable or a
  dict ``{(o, o'): cost}``).
* **Structural location** ``s(u)`` in R^8: shortest, longest and random-walk path lengths from the
  inputs and to the output, in- and out-degree.  Path lengths and degrees are divided by n - 1; a
  missing path counts as n before normalising and every entry is clipped to [0, 1].
* **Information flow** ``Phi(u, v) = min over directed paths u = w0 -> ... -> wr = v of
  sum_i (1 + omega(o(w_i)))``, ``Phi(u, u) = 0``; unreachable pairs get ``max finite + 1``; divided
  by the largest entry.  Variants ``flow="shortest" | "longest" | "random_walk"``, ``symmetrise``.
* **Operation weights** ``omega`` (relative compute, declared in :mod:`hotnas.operations`): conv 3x3
  = 1, conv 1x1 = 0.5 (the value of the spec's reference measurement, test 10.4), separable and
  dilated convolutions 1, pooling 0.25, skip / sum / input / output 0; a space's own operations
  their declared weight; undeclared labels 0.5, with one warning.
* **Node masses**: ``"uniform"`` (1/n) or ``"compute"`` (proportional to 0.1 + omega).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..cells import Cell, is_io_label
from ..operations import OPERATIONS, pair_cost, weight_of

__all__ = [
    "OP_FAMILY",
    "DEFAULT_OP_WEIGHTS",
    "op_cost",
    "op_weight",
    "structural_features",
    "information_flow",
    "CellFeatures",
    "cell_features",
    "cell_features_many",
    "feature_cost_matrix",
    "FeatureOptions",
]

#: label -> (family, kernel size) of the built-in operations with a kernel size (a read-only view of
#: :data:`hotnas.operations.OPERATIONS`, kept for compatibility; declare new labels there).
OP_FAMILY: dict[str, tuple[str, int]] = {
    k: (op.family, op.size) for k, op in OPERATIONS.items() if op.size is not None}

#: label -> omega of the built-in operations (a view of :data:`hotnas.operations.OPERATIONS`).
DEFAULT_OP_WEIGHTS: dict[str, float] = {k: op.weight for k, op in OPERATIONS.items() if k != "none"}

N_STRUCT = 8


def op_cost(a: str, b: str) -> float:
    """Default operation mismatch C_op(a, b) in [0, 1] (spec 3.2), from the declared operation
    features (:func:`hotnas.operations.pair_cost`; undeclared labels cost 1 and warn once)."""
    return pair_cost(a, b)


def op_weight(op: str, weights: Mapping[str, float] | None = None) -> float:
    """omega(op): relative compute of an operation — ``weights[op]`` when given, else the declared
    weight (:func:`hotnas.operations.weight_of`: 0 for input/output, 0.5 and a warning if undeclared)."""
    if is_io_label(op):
        return 0.0
    if weights is not None and op in weights:
        return float(weights[op])
    return weight_of(op)


@dataclass(frozen=True)
class FeatureOptions:
    """Options that change per-cell precomputations (hashable: part of cache keys)."""

    flow: str = "shortest"  # shortest | longest | random_walk
    symmetrise: bool = False
    unreachable: str | float = "max+1"  # "max+1", or a number (multiple of the max finite value)
    masses: str = "uniform"  # uniform | compute
    op_weights: tuple[tuple[str, float], ...] | None = None

    def __post_init__(self) -> None:
        if self.flow not in ("shortest", "longest", "random_walk"):
            raise ValueError(f"flow must be 'shortest', 'longest' or 'random_walk', got {self.flow!r}")
        if self.masses not in ("uniform", "compute"):
            raise ValueError(f"masses must be 'uniform' or 'compute', got {self.masses!r}")
        if not (self.unreachable == "max+1" or isinstance(self.unreachable, (int, float))):
            raise ValueError(f"unreachable must be 'max+1' or a number, got {self.unreachable!r}")

    @property
    def weights(self) -> dict[str, float] | None:
        return None if self.op_weights is None else dict(self.op_weights)

    @classmethod
    def make(cls, op_weights: Mapping[str, float] | None = None, **kw: Any) -> "FeatureOptions":
        ow = None if op_weights is None else tuple(sorted((str(k), float(v)) for k, v in op_weights.items()))
        return cls(op_weights=ow, **kw)


def _is_input(op: str) -> bool:
    return is_io_label(op) and op != "output"


_STRUCT_CACHE: dict[tuple, np.ndarray] = {}


def structural_features(cell: Cell) -> np.ndarray:
    """(n, 8) structural location of every node (spec 2.4), in the cell's own node order.

    Depends only on the graph and on which nodes are inputs / the output, so it is cached by those.
    """
    key = (cell.adjacency.tobytes(), cell.n, tuple(o if is_io_label(o) else "" for o in cell.ops))
    S = _STRUCT_CACHE.get(key)
    if S is None:
        if len(_STRUCT_CACHE) > 100_000:
            _STRUCT_CACHE.clear()
        S = _STRUCT_CACHE[key] = _structural_features(cell)
        S.setflags(write=False)
    return S


def _structural_features(cell: Cell) -> np.ndarray:
    """(n, 8) structural location of every node (spec 2.4), in the cell's own node order.

    Columns: shortest / longest / random-walk path length from the inputs, the same to the
    output, in-degree, out-degree; divided by n - 1, missing paths = n, clipped to [0, 1].
    """
    n = cell.n
    par, chi = cell.parents, cell.children
    order = cell.topological_order
    sp_in, lp_in, rw_in = _path_lengths(order, par, [_is_input(o) for o in cell.ops])
    sp_out, lp_out, rw_out = _path_lengths(order[::-1], chi, [o == "output" for o in cell.ops])
    S = np.array(
        [sp_in, lp_in, rw_in, sp_out, lp_out, rw_out,
         [len(p) for p in par], [len(c) for c in chi]],
        dtype=float,
    ).T
    S[~np.isfinite(S)] = n
    return np.clip(S / max(n - 1, 1), 0.0, 1.0)


def _path_lengths(order, prev: list, is_end: list[bool]) -> tuple[list[float], list[float], list[float]]:
    """Shortest, longest and random-walk path lengths from the end nodes, visiting ``order``.

    ``prev[v]``: the nodes one step closer to the ends; sp(v) = 1 + min sp(prev), lp(v) = 1 + max,
    rw(v) = 1 + mean rw(prev) over the prev reached; end nodes 0; unreached inf (lp: -inf).
    """
    inf = float("inf")
    n = len(is_end)
    sp, lp, rw = [inf] * n, [-inf] * n, [inf] * n
    for v in order:
        if is_end[v]:
            sp[v] = lp[v] = rw[v] = 0.0
            continue
        fin = [u for u in prev[v] if sp[u] < inf]
        if fin:
            sp[v] = 1 + min(sp[u] for u in fin)
            lp[v] = 1 + max(lp[u] for u in fin)
            rw[v] = 1 + sum(rw[u] for u in fin) / len(fin)
    return sp, lp, rw


def information_flow(cell: Cell, options: FeatureOptions | None = None) -> np.ndarray:
    """(n, n) directed information-flow cost Phi in [0, 1] (spec 3.2), in the cell's node order."""
    opt = options or FeatureOptions()
    n = cell.n
    w = [1.0 + op_weight(o, opt.weights) for o in cell.ops]
    chi = cell.children
    order = cell.topological_order
    if opt.flow == "random_walk":
        P = _random_walk_flow(cell, w)
    else:
        longest = opt.flow == "longest"
        inf = float("inf")
        rows = []
        for s in range(n):
            row = [inf] * n
            row[s] = 0.0
            for u in order:
                ru = row[u]
                if ru == inf:
                    continue
                for v in chi[u]:
                    c = ru + w[v]
                    if row[v] == inf or (c > row[v] if longest else c < row[v]):
                        row[v] = c
            rows.append(row)
        P = np.array(rows, dtype=float)
    return _normalise_flow(P, opt)


def _normalise_flow(P: np.ndarray, opt: FeatureOptions) -> np.ndarray:
    """Symmetrise (optionally), fill the unreached entries, divide by the largest entry (P is changed)."""
    if opt.symmetrise:
        P = np.minimum(P, P.T)
    finite = np.isfinite(P)
    mx = P[finite].max() if finite.any() else 0.0
    if opt.unreachable == "max+1":
        fill = mx + 1.0
    else:
        fill = float(opt.unreachable) * max(mx, 1.0)
    P[~finite] = fill
    top = P.max()
    return P / top if top > 0 else P


def _random_walk_flow(cell: Cell, w: list[float]) -> np.ndarray:
    """rw(u, v) = mean over children c of u that reach v of (w[c] + rw(c, v)); rw(v, v) = 0."""
    n = cell.n
    chi = cell.children
    order = cell.topological_order
    R = np.full((n, n), np.inf)
    for v in range(n):
        R[v, v] = 0.0
        for u in reversed(order):
            if u == v:
                continue
            vals = [w[c] + R[c, v] for c in chi[u] if np.isfinite(R[c, v])]
            if vals:
                R[u, v] = sum(vals) / len(vals)
    return R


@dataclass(frozen=True, eq=False)
class CellFeatures:
    """Per-cell precomputations, in the cell's canonical node order."""

    hash: str
    ops: tuple[str, ...]
    struct: np.ndarray  # (n, 8)
    flow: np.ndarray  # (n, n)
    masses: np.ndarray  # (n,)

    @property
    def n(self) -> int:
        return len(self.ops)


def cell_features(cell: Cell, options: FeatureOptions | None = None) -> CellFeatures:
    """Structural features, Phi and masses of ``cell`` in canonical node order."""
    opt = options or FeatureOptions()
    c = cell.canonical()
    return CellFeatures(cell.canonical_hash, c.ops, structural_features(c), information_flow(c, opt), _masses(cell, c, opt))


def _masses(cell: Cell, c: Cell, opt: FeatureOptions) -> np.ndarray:
    """Node masses of ``cell`` in the order of its canonical form ``c``."""
    if opt.masses == "uniform" and cell.masses is None:
        return np.full(c.n, 1.0 / c.n)
    if cell.masses is not None:
        return np.asarray(c.masses, dtype=float)
    a = np.array([0.1 + op_weight(o, opt.weights) for o in c.ops])
    return a / a.sum()


def cell_features_many(cells: Sequence[Cell], options: FeatureOptions | None = None) -> list[CellFeatures]:
    """:func:`cell_features` of many cells, the same arrays bit for bit, with Phi batched.

    Cells whose canonical forms share one graph (NAS-Bench-201's 8,765 distinct cells have a few
    hundred) get Phi in one pass over that graph's edges for all of them at once (``flow``
    "shortest" / "longest": the same additions and comparisons per source as
    :func:`information_flow`, in the same order); "random_walk" goes cell by cell.
    Shapes: a list of C cells -> a list of C :class:`CellFeatures`.
    """
    opt = options or FeatureOptions()
    if opt.flow == "random_walk":
        return [cell_features(c, opt) for c in cells]
    out: list[CellFeatures | None] = [None] * len(cells)
    canon = [c.canonical() for c in cells]
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(canon):
        groups.setdefault((c.adjacency.tobytes(), c.n), []).append(i)
    weights = opt.weights
    longest = opt.flow == "longest"
    w_of: dict[str, float] = {}  # 1 + omega(label), once per label
    for c in canon:
        for o in c.ops:
            if o not in w_of:
                w_of[o] = 1.0 + op_weight(o, weights)
    for idx in groups.values():
        c0 = canon[idx[0]]
        n = c0.n
        W = np.array([[w_of[o] for o in canon[i].ops] for i in idx])  # (C, n)
        R = np.full((len(idx), n, n), np.inf)  # R[k, s, v]: cell k, source s
        R[:, np.arange(n), np.arange(n)] = 0.0
        chi = c0.children
        for u in c0.topological_order:
            ru = R[:, :, u]
            for v in chi[u]:
                c = ru + W[:, v][:, None]
                rv = R[:, :, v]
                if longest:  # unreached (inf) source rows stay as they are
                    R[:, :, v] = np.where(np.isfinite(ru) & ((rv == np.inf) | (c > rv)), c, rv)
                else:
                    R[:, :, v] = np.where(c < rv, c, rv)
        for k, i in enumerate(idx):
            out[i] = _features_from_flow(cells[i], canon[i], R[k], opt)
    return out  # type: ignore[return-value]


def _features_from_flow(cell: Cell, c: Cell, P: np.ndarray, opt: FeatureOptions) -> CellFeatures:
    """CellFeatures of ``cell`` (canonical form ``c``) from its raw path-cost matrix P (inf: unreached)."""
    P = _normalise_flow(np.array(P), opt)
    return CellFeatures(cell.canonical_hash, c.ops, structural_features(c), P, _masses(cell, c, opt))


OpCost = Callable[[str, str], float] | Mapping[tuple[str, str], float] | None


def _op_cost_fn(table: OpCost) -> Callable[[str, str], float]:
    if table is None:
        return op_cost
    if callable(table):
        return table
    tab = dict(table)

    def fn(a: str, b: str) -> float:
        if a == b:
            return 0.0
        if (a, b) in tab:
            return float(tab[(a, b)])
        if (b, a) in tab:
            return float(tab[(b, a)])
        return op_cost(a, b)

    return fn


def op_cost_matrix(ops1: tuple[str, ...], ops2: tuple[str, ...], table: OpCost = None) -> np.ndarray:
    fn = _op_cost_fn(table)
    return np.array([[fn(a, b) for b in ops2] for a in ops1], dtype=float).reshape(len(ops1), len(ops2))


def feature_cost_matrix(f1: CellFeatures, f2: CellFeatures, lambda_op: float = 0.5, op_cost_table: OpCost = None) -> np.ndarray:
    """M_uv = lambda_op C_op(o(u), o(v)) + (1 - lambda_op) (1/F) ||s(u) - s(v)||_1  (spec 3.2)."""
    Cop = op_cost_matrix(f1.ops, f2.ops, op_cost_table)
    Cst = np.abs(f1.struct[:, None, :] - f2.struct[None, :, :]).sum(-1) / N_STRUCT
    return lambda_op * Cop + (1.0 - lambda_op) * Cst
