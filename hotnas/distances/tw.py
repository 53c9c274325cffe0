r"""TW-NAS tree-Wasserstein baseline (spec 7.2; after ntienvu/TW_NAS ``tw_2g_v2b.py``).

.. math::

    \mathrm{TW}(\mu, \nu) = \sum_e w_e |\mu(\Gamma(e)) - \nu(\Gamma(e))|

* **Operation part** (1-gram): histogram of the operation nodes of a cell (input, output and
  ``sum`` nodes excluded; ``none`` is already deleted), normalised to 1.  Tree: every operation
  family with several kernel sizes or types (conv, sep_conv, dil_conv, pool) is an inner node
  joined to the root by weight 1 - alpha, its operations are leaves of weight alpha; other
  operations (skip_connect, ...) are leaves of weight 1 under the root.  alpha = 0.1.  Hence
  conv3-only vs conv1-only = 2 alpha, conv3-only vs pool-only = 2. A space's own operations are
  placed by their declared ``family`` (:mod:`hotnas.operations`; ``passthrough`` ones at the
  root); undeclared labels are root leaves and warn once.
* **Structure part**: layer index of a node = shortest hop distance from the inputs (unreachable
  nodes dropped); in- and out-degrees summed per layer index, normalised to 1 (uniform if all
  zero), compared as 1-D measures on a chain with bin i of an L-layer cell at i / L.
* TW = w_op TW_op + w_in TW_in + w_out TW_out (weights 1, 1, 1).  TW-NAS's kernel keeps three
  length-scales; with the one-length-scale GP of this library the sum is used.  Networks with
  several cell types: the mean over types of the distance between same-type cells (DARTS: normal
  with normal, reduction with reduction); a repeated single cell: the cell distance.
A sum of tree-Wasserstein distances is negative definite, so exp(-TW / l) is positive definite.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sdot.validation import finite

from ..cells import Cell, Network, is_io_label
from ..operations import OPERATIONS, warn_undeclared

__all__ = ["tw_op", "chain_tw", "degree_histograms", "tw_cell", "tw_distance"]

_STRUCTURAL = {"sum"}


def _histogram(cell: Cell) -> dict[str, float]:
    ops = [o for v, o in enumerate(cell.ops)
           if not is_io_label(o) and o not in _STRUCTURAL and (cell.parents[v] or cell.children[v])]
    if not ops:
        return {}
    h: dict[str, float] = {}
    for o in ops:
        h[o] = h.get(o, 0.0) + 1.0 / len(ops)
    return h


def tw_op(h1: dict[str, float], h2: dict[str, float], alpha: float = 0.1) -> float:
    """Tree-Wasserstein between two operation histograms (family tree, leaf weight alpha)."""
    total = 0.0
    fam_delta: dict[str, float] = {}
    labels = set(h1) | set(h2)
    warn_undeclared(labels, "tw")
    for o in labels:
        d = h1.get(o, 0.0) - h2.get(o, 0.0)
        decl = OPERATIONS.peek(o)
        if decl is None or decl.passthrough:
            total += abs(d)
        else:
            total += alpha * abs(d)
            fam_delta[decl.family] = fam_delta.get(decl.family, 0.0) + d
    return total + (1.0 - alpha) * sum(abs(x) for x in fam_delta.values())


def chain_tw(h1: np.ndarray, h2: np.ndarray) -> float:
    """W1 between histograms on chains, bin i of an L-bin histogram at i / L (different L allowed)."""
    h1, h2 = np.asarray(h1, float), np.asarray(h2, float)
    x1, x2 = np.arange(len(h1)) / len(h1), np.arange(len(h2)) / len(h2)
    xs = np.union1d(x1, x2)
    F1 = np.cumsum(h1)[np.searchsorted(x1, xs, side="right") - 1]
    F2 = np.cumsum(h2)[np.searchsorted(x2, xs, side="right") - 1]
    return float(np.sum(np.abs(F1 - F2)[:-1] * np.diff(xs)))


def degree_histograms(cell: Cell) -> tuple[np.ndarray, np.ndarray]:
    """In- and out-degree mass per layer index (shortest hop distance from the inputs), normalised."""
    n = cell.n
    layer = [-1] * n
    frontier = [v for v in range(n) if is_io_label(cell.ops[v]) and cell.ops[v] != "output"]
    for v in frontier:
        layer[v] = 0
    while frontier:
        nxt = []
        for u in frontier:
            for v in cell.children[u]:
                if layer[v] < 0:
                    layer[v] = layer[u] + 1
                    nxt.append(v)
        frontier = nxt
    L = max(layer) + 1
    hin, hout = np.zeros(L), np.zeros(L)
    for v in range(n):
        if layer[v] >= 0:
            hin[layer[v]] += len(cell.parents[v])
            hout[layer[v]] += len(cell.children[v])
    norm = [h / h.sum() if h.sum() > 0 else np.full(L, 1.0 / L) for h in (hin, hout)]
    return norm[0], norm[1]


_CACHE: dict[str, tuple[dict[str, float], np.ndarray, np.ndarray]] = {}


def _summary(c: Cell) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    s = _CACHE.get(c.canonical_hash)
    if s is None:
        if len(_CACHE) > 100_000:
            _CACHE.clear()
        s = _CACHE[c.canonical_hash] = (_histogram(c), *degree_histograms(c))
    return s


def tw_cell(c1: Cell, c2: Cell, alpha: float = 0.1, weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> float:
    if c1.canonical_hash == c2.canonical_hash:
        return 0.0
    h1, i1, o1 = _summary(c1)
    h2, i2, o2 = _summary(c2)
    d_op = tw_op(h1, h2, alpha)
    return weights[0] * d_op + weights[1] * chain_tw(i1, i2) + weights[2] * chain_tw(o1, o2)


def tw_distance(n1: Network, n2: Network, alpha: float = 0.1, weights: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> float:
    """TW between networks: mean over cell types of the same-type cell distances."""
    def by_type(net: Network) -> dict[Any, Cell]:
        out: dict[Any, Cell] = {}
        for ci in net.cells:
            out.setdefault(ci.cell_type, ci.cell)
        return out

    t1, t2 = by_type(n1), by_type(n2)
    if set(t1) != set(t2):
        raise ValueError(f"tw compares networks with the same cell types, got {sorted(map(str, t1))} and {sorted(map(str, t2))}")
    for net in (n1, n2):
        per_type: dict[Any, set] = {}
        for ci in net.cells:
            per_type.setdefault(ci.cell_type, set()).add(ci.cell.canonical_hash)
        if any(len(v) > 1 for v in per_type.values()):
            raise ValueError("tw needs one cell per cell type (as in NB101, NB201, DARTS)")
    return float(np.mean([tw_cell(t1[t], t2[t], alpha, weights) for t in t1]))


def _front(a: Any, b: Any, space: Any = None, alpha: float = 0.1, weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
           ngram: int = 1) -> float:
    from . import as_network

    if ngram != 1:
        raise ValueError(f"tw: only the 1-gram operation histogram is implemented (ngram=1), got ngram={ngram}")
    if not 0.0 <= finite("tw: alpha", alpha) <= 1.0:
        raise ValueError(f"tw: alpha must lie in [0, 1], got {alpha}")
    return tw_distance(as_network(a, space), as_network(b, space), alpha, tuple(weights))  # type: ignore[arg-type]
