r"""Network-level distance HOTNN: exact OT over cells (spec 4.2) [derived — reconstruction].

For networks :math:`\mathcal N = (c_k, \pi_k)_{k=1}^K` and :math:`\mathcal N' = (c'_l, \pi'_l)_{l=1}^{K'}`:

.. math::

    G_{kl} = d_{cell}(c_k, c'_l) + \mu |\pi_k - \pi'_l| + \tau 1(\mathrm{type}_k \ne \mathrm{type}'_l),\qquad
    \mathrm{HOTNN} = \min_{\Gamma \in \Pi(b, b')} \sum_{kl} G_{kl} \Gamma_{kl}

with cell masses b (uniform 1/K unless the network carries masses), solved exactly (POT's network
simplex, the computation of ``ot.emd2(b, b', G)``).  Only the distinct cells of each network are
compared at cell level (a network of K identical cells costs one d_cell).

Short-circuit: when both networks consist of one repeated cell, with the same positions, types and
masses (NB101, NB201), the identity plan is optimal and HOTNN = d_cell exactly (every entry of G
is >= d_cell and the identity plan attains it), so the outer OT is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from .emd import emd as exact_ot

from sdot.validation import check_nonnegative

from ..cells import Cell, Network
from ..operations import warn_undeclared
from .ifgw import IFGWOptions, features_cached, ifgw_pairs

__all__ = ["HOTNNOptions", "NetworkSummary", "summarise", "outer_cost", "network_distance"]


@dataclass(frozen=True)
class HOTNNOptions:
    """mu (position weight, 0.5), tau (cell-type penalty, 0.0) and the cell-level options."""

    mu: float = 0.5
    tau: float = 0.0
    cell: IFGWOptions = field(default_factory=IFGWOptions)

    def __post_init__(self) -> None:
        check_nonnegative(mu=self.mu, tau=self.tau)

    @classmethod
    def make(cls, **kw: Any) -> "HOTNNOptions":
        mu = kw.pop("mu", 0.5)
        tau = kw.pop("tau", 0.0)
        cell = kw.pop("cell", None)
        if cell is None:
            cell = IFGWOptions.make(**kw)
        elif kw:
            raise ValueError(f"give either cell=IFGWOptions(...) or flat cell options, not both: {sorted(kw)}")
        return cls(mu=float(mu), tau=float(tau), cell=cell)

    def key(self) -> tuple:
        return (self.mu, self.tau, self.cell.key())


@dataclass(frozen=True, eq=False)
class NetworkSummary:
    """What HOTNN needs of a network: per-cell hashes, positions, types, masses."""

    hash: str
    cell_hashes: tuple[str, ...]
    positions: np.ndarray
    types: tuple[Any, ...]
    masses: np.ndarray
    frame: str = ""  # K, types, positions and masses, as one comparable string
    repeated: bool = False  # one cell repeated K times


_FRAMES: dict[tuple, str] = {}


def summarise(net: Network) -> NetworkSummary:
    pos, types, masses = net.positions, tuple(net.cell_types), net.cell_masses
    key = (types, pos.tobytes(), masses.tobytes())
    frame = _FRAMES.get(key)
    if frame is None:  # a space's networks share a few frames: the string is made once per frame
        frame = repr((len(pos), *key))
        if len(_FRAMES) < 10_000:
            _FRAMES[key] = frame
    hashes = tuple(c.cell.canonical_hash for c in net.cells)
    return NetworkSummary(
        net.canonical_hash, hashes, pos, types, masses, frame, len(set(hashes)) == 1
    )


def _same_frame(a: NetworkSummary, b: NetworkSummary) -> bool:
    return a.frame == b.frame


def cell_key(h1: str, h2: str) -> tuple[str, str]:
    return (h1, h2) if h1 <= h2 else (h2, h1)


def outer_cost(a: NetworkSummary, b: NetworkSummary, dcell: Mapping[tuple[str, str], float], mu: float, tau: float) -> float:
    """Exact outer OT given the cell distances ``dcell[(h, h')]`` (keys ordered, h <= h')."""
    if a.hash == b.hash:
        return 0.0
    if a.repeated and b.repeated and _same_frame(a, b):
        h1, h2 = a.cell_hashes[0], b.cell_hashes[0]
        return 0.0 if h1 == h2 else float(dcell[cell_key(h1, h2)])
    K, L = len(a.cell_hashes), len(b.cell_hashes)
    D = np.empty((K, L))
    for k, hk in enumerate(a.cell_hashes):
        for l, hl in enumerate(b.cell_hashes):
            D[k, l] = 0.0 if hk == hl else dcell[cell_key(hk, hl)]
    G = D + mu * np.abs(a.positions[:, None] - b.positions[None, :])
    if tau:
        G = G + tau * np.array([[ta != tb for tb in b.types] for ta in a.types], dtype=float)
    G = np.ascontiguousarray(G)
    bm = b.masses * (a.masses.sum() / b.masses.sum())
    T, cost, _u, _v, code = exact_ot(np.ascontiguousarray(a.masses), np.ascontiguousarray(bm), G, 100000)
    if code != 1:
        raise RuntimeError(f"outer OT failed (code {code})")
    return float((G * T).sum())


def network_distance(n1: Network | Cell, n2: Network | Cell, **options: Any) -> float:
    """HOTNN between two networks (a bare Cell counts as a one-cell network).

    Options: mu (0.5), tau (0.0) and the cell-level options of
    :func:`hotnas.distances.ifgw.cell_distance` (alpha, lambda_op, op_cost, flow, ...). Operation
    costs and compute weights are the labels' declared features (:mod:`hotnas.operations`);
    undeclared labels get documented defaults (cost 1, weight 0.5) and one ``UserWarning``.
    """
    opt = options.pop("_options", None) or HOTNNOptions.make(**options)
    if isinstance(n1, Cell):
        n1 = Network.from_cells([n1])
    if isinstance(n2, Cell):
        n2 = Network.from_cells([n2])
    s1, s2 = summarise(n1), summarise(n2)
    if s1.hash == s2.hash:
        return 0.0
    c1, c2 = n1.unique_cells(), n2.unique_cells()
    warn_undeclared({o for c in (*c1.values(), *c2.values()) for o in c.ops}, "hotnn")  # one warning per pair
    keys = sorted({cell_key(h1, h2) for h1 in c1 for h2 in c2 if h1 != h2})
    cells = {**c1, **c2}
    fo = opt.cell.features
    vals = ifgw_pairs([features_cached(cells[h1], fo) for h1, _ in keys],
                      [features_cached(cells[h2], fo) for _, h2 in keys], opt.cell)
    dcell = dict(zip(keys, np.asarray(vals).tolist()))
    return outer_cost(s1, s2, dcell, opt.mu, opt.tau)


def _front(a: Any, b: Any, space: Any = None, **options: Any) -> float:
    from . import as_network

    return network_distance(as_network(a, space), as_network(b, space), **options)
