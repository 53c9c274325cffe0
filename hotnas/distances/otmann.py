r"""NASBOT's OTMANN distance (spec 7.1; after kirthevasank/nasbot ``nn/nn_comparators.py``).

.. math::

    d = \min_{Z \ge 0,\ Z1 \le m^1,\ Z^\top 1 \le m^2} \nu_{lmm}\langle Z, C_{lmm}\rangle
        + \nu_{str}\langle Z, C_{str}\rangle + \nu_{nas}\Big(\sum_i m^1_i + \sum_j m^2_j - 2\sum_{ij} Z_{ij}\Big)

solved as a balanced OT with one dummy node per side (supplies [m^1, t_2], demands [m^2, t_1],
dummy row and column cost nu_nas, dummy-dummy 0), after dividing the masses by t_1 + t_2.
``normalise=True`` (default) returns d / (t_1 + t_2) ("emd" in NASBOT), else d ("lp").

Cell spaces as layer graphs [engineering choice, spec 7]: a network is flattened (cell k's output
feeds the next cell's last input, the cell before that its other input; one network input ``ip``
and output ``op``); ``skip_connect``, ``sum`` and the cells' own input/output nodes are contracted
into edges; conv 1x1/3x3/5x5 (plain, separable or dilated) become ``conv k``, pools
``max-pool`` / ``avg-pool``. Any other operation is a layer of its own, labelled by its name, with
the features its space declared (:mod:`hotnas.operations`): a ``passthrough`` operation is
contracted like skip, one with ``params`` is conv-like (mass, structure group), one without is
pool-like; two such labels of one family cost ``nu_nas x C_op`` (the declared family or pair cost),
else "infinite". An undeclared label is never contracted: it is a conv-like layer of its own, and
it warns once (before this rule, every unknown label was contracted and OTMANN returned 0 between
cells of unknown operations).  ``level="cell"`` compares one cell (the default, ``"auto"``, does so
for networks made of one repeated cell, NB101 and NB201; DARTS is compared as a network).

* Layer masses (``compute_layer_masses`` with every layer of ``units`` units): conv = incoming
  channels x units, pool = incoming channels, ip and op each 0.1 x the sum of processing masses
  (NASBOT's floor of 100 is dropped: it is tied to NASBOT's absolute unit counts).
* Label mismatch: 0 for equal labels, sqrt(2)/10 sqrt(|k - k'|) between conv k and conv k'
  (1<->3 and 3<->5: 0.2), 0.5 between pools, otherwise "infinite" (7.65432e5), all x nu_nas.
* Structure: shortest, longest and random-walk path lengths from ``ip`` and to ``op``, for the
  groups all / conv / pool (only edges leaving a layer of the group count), averaged:
  C_str(i, j) = (mean_d |bk_d(i) - bk_d(j)| + mean_d |fw_d(i) - fw_d(j)|) / 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from .emd import emd as exact_ot

from ..cells import Cell, Network, is_io_label
from ..operations import OPERATIONS, pair_cost, warn_undeclared

__all__ = ["LayerGraph", "layer_graph", "otmann", "otmann_distance", "label_mismatch"]

_INF = 7.65432e5
_KERNEL = {
    "nor_conv_3x3": 3, "nor_conv_1x1": 1, "conv3x3-bn-relu": 3, "conv1x1-bn-relu": 1,
    "sep_conv_3x3": 3, "sep_conv_5x5": 5, "dil_conv_3x3": 3, "dil_conv_5x5": 5,
}
_POOL = {"avg_pool_3x3": "avg-pool", "max_pool_3x3": "max-pool", "maxpool3x3": "max-pool"}
_CONTRACT = {"skip_connect", "sum", "none"}


@dataclass(frozen=True, eq=False)
class LayerGraph:
    """OTMANN's view of a network: layer labels, masses and path-length features (topological order)."""

    labels: tuple[str, ...]
    masses: np.ndarray
    bkwd: np.ndarray  # (L, 9) path lengths from ip
    fwd: np.ndarray  # (L, 9) path lengths to op


_OWN = "op:"  # prefix of a layer labelled by its own operation name


def _layer_label(op: str) -> str | None:
    """OTMANN's layer label of an operation, or None for a node contracted into an edge."""
    if op in _KERNEL:
        return f"conv{_KERNEL[op]}"
    if op in _POOL:
        return _POOL[op]
    if is_io_label(op) or op in _CONTRACT:
        return None
    decl = OPERATIONS.peek(op)
    if decl is not None and decl.passthrough:
        return None
    return _OWN + op  # a declared operation, or an undeclared one (warned about by layer_graph)


def _has_params(lab: str) -> bool:
    if lab.startswith(_OWN):
        decl = OPERATIONS.peek(lab[len(_OWN):])
        return True if decl is None else bool(decl.params)
    return lab.startswith("conv")


def _parameter_free(lab: str) -> bool:
    if lab.startswith(_OWN):
        return not _has_params(lab)
    return lab.endswith("-pool")


def label_mismatch(a: str, b: str, nu_nas: float = 1.0) -> float:
    if a == b:
        return 0.0
    if a.startswith(_OWN) and b.startswith(_OWN):
        oa, ob = a[len(_OWN):], b[len(_OWN):]
        da, db = OPERATIONS.peek(oa), OPERATIONS.peek(ob)
        c = pair_cost(oa, ob) if da is not None and db is not None else 1.0
        return nu_nas * c if c < 1.0 else _INF
    if a.startswith("conv") and b.startswith("conv"):
        return nu_nas * np.sqrt(2) / 10 * np.sqrt(abs(int(a[4:]) - int(b[4:])))
    if a.endswith("-pool") and b.endswith("-pool"):
        return nu_nas * 0.5
    return _INF


def _flatten(net: Network, level: str) -> tuple[list[str], list[set[int]]]:
    """Layer DAG (labels, children sets) with ip = 0 and op = last, before contraction."""
    cells = [net.cells[0].cell] if level == "cell" else [c.cell for c in net.cells]
    labels: list[str] = ["ip"]
    children: list[set[int]] = [set()]
    prev_outs: list[int] = [0, 0]  # outputs of the two previous cells (ip for the first cells)
    for cell in cells:
        base = len(labels)
        for op in cell.ops:
            labels.append(op)
            children.append(set())
        for u in range(cell.n):
            for v in cell.children[u]:
                children[base + u].add(base + v)
        inputs = [v for v in range(cell.n) if is_io_label(cell.ops[v]) and cell.ops[v] != "output"]
        # the last input takes the previous cell, an earlier one the cell before (DARTS c_{k-1}, c_{k-2})
        for k, v in enumerate(sorted(inputs, key=lambda v: cell.ops[v])):
            src = prev_outs[-1] if k == len(inputs) - 1 else prev_outs[-2]
            children[src].add(base + v)
        out = base + cell.ops.index("output")
        prev_outs = [prev_outs[-1], out]
    labels.append("op")
    children.append(set())
    children[prev_outs[-1]].add(len(labels) - 1)
    return labels, children


@lru_cache(maxsize=4096)
def _layer_graph_cached(key: str, net: Network, level: str, units: float) -> LayerGraph:
    labels, children = _flatten(net, level)
    N = len(labels)
    parents: list[set[int]] = [set() for _ in range(N)]
    for u in range(N):
        for v in children[u]:
            parents[v].add(u)
    alive = [True] * N
    # contract pass-through nodes into edges
    for w in range(1, N - 1):
        if _layer_label(labels[w]) is None:
            for p in parents[w]:
                children[p].discard(w)
                children[p] |= children[w]
            for c in children[w]:
                parents[c].discard(w)
                parents[c] |= parents[w]
            alive[w] = False
    keep = [i for i in range(N) if alive[i]]
    new = {old: i for i, old in enumerate(keep)}
    labs = tuple("ip" if i == 0 else "op" if i == N - 1 else _layer_label(labels[i]) for i in keep)  # type: ignore[misc]
    ch = [sorted(new[c] for c in children[i] if c in new) for i in keep]
    pa = [sorted(new[p] for p in parents[i] if p in new) for i in keep]
    L = len(keep)
    masses = np.zeros(L)
    for i, lab in enumerate(labs):
        fan_in = units * len(pa[i])
        if i == 0 or i == L - 1:
            continue
        if _has_params(lab):
            masses[i] = fan_in * units
        elif _parameter_free(lab):
            masses[i] = fan_in
    proc = masses.sum()
    masses[0] = masses[-1] = max(0.1 * proc, 1e-12)
    groups = (lambda s: True, _has_params, _parameter_free)
    order = list(range(L))  # contraction keeps topological order
    bk = np.zeros((L, 9))
    fw = np.zeros((L, 9))
    for g, member in enumerate(groups):
        w = [1.0 if member(lab) else 0.0 for lab in labs]
        # backward: weights of the predecessors on the way from the input; forward: of the node itself
        bk[:, 3 * g : 3 * g + 3] = _paths(order[1:], pa, [w] * L, 0, L)
        fw[:, 3 * g : 3 * g + 3] = _paths(order[-2::-1], ch, [[x] * L for x in w], L - 1, L)
    bk[~np.isfinite(bk)] = L
    fw[~np.isfinite(fw)] = L
    return LayerGraph(labs, masses, bk, fw)


def _paths(order: list[int], prev: list[list[int]], wt: list, end: int, L: int) -> np.ndarray:
    """(L, 3) shortest, longest and mean-over-branches weighted path lengths from node ``end``.

    For v in ``order``: over the reached u in ``prev[v]``, sp(v) = min sp(u) + wt[v][u], lp the max,
    rw the mean; ``end`` is 0, unreached nodes inf (lp: -inf).
    """
    sp, lp, rw = np.full(L, np.inf), np.full(L, -np.inf), np.full(L, np.inf)
    sp[end] = lp[end] = rw[end] = 0.0
    for v in order:
        ps = [u for u in prev[v] if np.isfinite(sp[u])]
        if ps:
            wv = wt[v]
            sp[v] = min(sp[u] + wv[u] for u in ps)
            lp[v] = max(lp[u] + wv[u] for u in ps)
            rw[v] = np.mean([rw[u] + wv[u] for u in ps])
    return np.stack([sp, lp, rw], 1)


def layer_graph(net: Network | Cell, level: str = "auto", units: float = 16.0) -> LayerGraph:
    if isinstance(net, Cell):
        net = Network.from_cells([net])
    if level == "auto":
        level = "cell" if len(net.unique_cells()) == 1 else "network"
    if level not in ("cell", "network"):
        raise ValueError(f"otmann level must be 'auto', 'cell' or 'network', got {level!r}")
    key = (net.cells[0].cell.canonical_hash if level == "cell" else net.canonical_hash)
    cells = [net.cells[0].cell] if level == "cell" else [c.cell for c in net.cells]
    warn_undeclared({o for c in cells for o in c.ops if _layer_label(o) is not None and _layer_label(o).startswith(_OWN)
                     and o not in OPERATIONS}, "otmann")
    return _layer_graph_cached(key + level, net, level, float(units))


def otmann(g1: LayerGraph, g2: LayerGraph, nu_str: float = 0.1, nu_lmm: float = 1.0, nu_nas: float = 1.0,
           normalise: bool = True) -> float:
    """OTMANN between two layer graphs (the balanced dummy-node program)."""
    vocab = sorted(set(g1.labels) | set(g2.labels))
    table = np.array([[label_mismatch(a, b, nu_nas) for b in vocab] for a in vocab])
    pos = {lab: i for i, lab in enumerate(vocab)}
    Clmm = table[np.array([pos[x] for x in g1.labels])[:, None], np.array([pos[x] for x in g2.labels])[None, :]]
    Cstr = 0.5 * (np.abs(g1.bkwd[:, None, :] - g2.bkwd[None, :, :]).mean(-1)
                  + np.abs(g1.fwd[:, None, :] - g2.fwd[None, :, :]).mean(-1))
    t1, t2 = g1.masses.sum(), g2.masses.sum()
    n1, n2 = len(g1.labels), len(g2.labels)
    C = np.zeros((n1 + 1, n2 + 1))
    C[:n1, :n2] = nu_lmm * Clmm + nu_str * Cstr
    C[:n1, n2] = nu_nas
    C[n1, :n2] = nu_nas
    tot = t1 + t2
    a = np.append(g1.masses, t2) / tot
    b = np.append(g2.masses, t1) / tot
    G, cost, _u, _v, code = exact_ot(a, b * (a.sum() / b.sum()), np.ascontiguousarray(C), 100000)
    if code != 1:
        raise RuntimeError(f"OTMANN transport failed (code {code})")
    val = float((C * G).sum())
    return val if normalise else val * tot


def otmann_distance(n1: Network | Cell, n2: Network | Cell, level: str = "auto", units: float = 16.0,
                    nu_str: float = 0.1, nu_lmm: float = 1.0, nu_nas: float = 1.0, normalise: bool = True) -> float:
    if isinstance(n1, Cell):
        n1 = Network.from_cells([n1])
    if isinstance(n2, Cell):
        n2 = Network.from_cells([n2])
    if level == "auto":
        level = "cell" if len(n1.unique_cells()) == 1 and len(n2.unique_cells()) == 1 else "network"
    if n1.canonical_hash == n2.canonical_hash:
        return 0.0
    warn_undeclared({o for net in (n1, n2) for c in net.unique_cells().values() for o in c.ops}, "otmann")
    if n1.canonical_hash > n2.canonical_hash:  # a canonical orientation makes the value exactly symmetric
        n1, n2 = n2, n1
    return otmann(layer_graph(n1, level, units), layer_graph(n2, level, units), nu_str, nu_lmm, nu_nas, normalise)


def _front(a: Any, b: Any, space: Any = None, **options: Any) -> float:
    from . import as_network

    return otmann_distance(as_network(a, space), as_network(b, space), **options)
