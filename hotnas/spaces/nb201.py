"""NAS-Bench-201: official strings, the 15,625 cells in official index order, mutations, networks.

An architecture is the official string
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` — a 4-node cell whose 6 edges (in string order
1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2) each carry one of :data:`OPS`.

Edge-to-node conversion (spec 2.2, after TW-NAS ``nas_bench/cell.py``): edge i of the string becomes
node i + 1 of an 8-node graph (0 = input, 7 = output) with the fixed adjacency
0->1, 0->2, 0->4, 1->3, 1->5, 2->6, 3->6, 4->7, 5->7, 6->7.  ``none`` nodes are deleted with their
edges, then nodes not on an input -> output path are pruned (input and output always kept)
[engineering choice].  Macro skeleton: 3 stages of 5 identical cells separated by fixed residual
reduction blocks, so a network is K = 15 identical cells at positions k / 14, stages 0, 1, 2.

Canonical strings are the official strings themselves (so :meth:`NB201Space.enumerate` lists 15,625
distinct architectures); strings whose pruned cells are isomorphic share one
:attr:`hotnas.cells.Cell.canonical_hash`, which is what distance caches key on.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from functools import lru_cache

import numpy as np

from ..cells import INPUT, OUTPUT, Cell, Network
from .base import SearchSpace

__all__ = ["NB201Space", "OPS", "EDGES", "NODE_ADJACENCY", "parse_arch", "arch_string"]

#: Edge operations in the official NAS-Bench-201 order.
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Edges (to, from) in string order.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
#: Operations-on-nodes adjacency (8 nodes: input, the 6 edge operations, output).
NODE_ADJACENCY: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7), (6, 7),
)
N_CELLS = 15
CELLS_PER_STAGE = 5

_TOKEN = re.compile(r"^([A-Za-z0-9_]+)~(-?\d+)$")
_OP = "(" + "|".join(OPS) + ")"
_WELL_FORMED = re.compile(rf"\|{_OP}~0\|\+\|{_OP}~0\|{_OP}~1\|\+\|{_OP}~0\|{_OP}~1\|{_OP}~2\|\Z")


def parse_arch(arch: str) -> tuple[str, ...]:
    """The 6 edge operations of an official string, in string order.

    Raises:
        ValueError: naming the offending node group or token (unknown operation, wrong number of
            edges, wrong input index, missing bars).
    """
    if not isinstance(arch, str):
        raise ValueError(f"NB201 architecture must be a string, got {type(arch).__name__}")
    s = arch.strip()
    m = _WELL_FORMED.match(s)  # one match for a valid string; the checks below name what is wrong
    if m is not None:
        return m.groups()
    groups = s.split("+")
    if len(groups) != 3:
        raise ValueError(f"NB201 string {arch!r} has {len(groups)} node groups separated by '+', expected 3")
    ops: list[str] = []
    for node, group in enumerate(groups, start=1):
        if len(group) < 2 or not group.startswith("|") or not group.endswith("|"):
            raise ValueError(f"NB201 node {node} group {group!r} must start and end with '|'")
        tokens = group[1:-1].split("|")
        if len(tokens) != node:
            raise ValueError(f"NB201 node {node} group {group!r} has {len(tokens)} edges, expected {node}")
        for j, tok in enumerate(tokens):
            m = _TOKEN.match(tok)
            if m is None:
                raise ValueError(f"NB201 node {node} edge token {tok!r} is not of the form 'op~input'")
            op, src = m.group(1), int(m.group(2))
            if op not in OPS:
                raise ValueError(f"NB201 node {node} edge {tok!r}: unknown operation {op!r}; expected one of {OPS}")
            if src != j:
                raise ValueError(f"NB201 node {node} edge {tok!r}: input index {src}, expected {j}")
            ops.append(op)
    return tuple(ops)


def arch_string(ops: tuple[str, ...] | list[str]) -> str:
    """Official string of 6 edge operations in string order."""
    if len(ops) != 6:
        raise ValueError(f"NB201 needs 6 edge operations, got {len(ops)}")
    for o in ops:
        if o not in OPS:
            raise ValueError(f"unknown NB201 operation {o!r}; expected one of {OPS}")
    return "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)


@lru_cache(maxsize=1)
def _node_adjacency() -> np.ndarray:
    """Adjacency (8, 8) of the operations-on-nodes graph: input, the 6 edge operations, output."""
    A = np.zeros((8, 8), dtype=np.int8)
    for u, v in NODE_ADJACENCY:
        A[u, v] = 1
    A.setflags(write=False)
    return A


@lru_cache(maxsize=64)
def _pruned_structure(alive: tuple[bool, ...]) -> tuple[tuple[int, ...], np.ndarray]:
    """Kept node indices (of the 8-node graph) and their adjacency, for a pattern of non-none edges."""
    A = _node_adjacency()
    keep = [0] + [i + 1 for i, ok in enumerate(alive) if ok] + [7]
    sub = Cell(A[np.ix_(keep, keep)], tuple([INPUT] + ["op"] * (len(keep) - 2) + [OUTPUT]))
    n = sub.n
    # reuse Cell.pruned on a labelled copy, then map back to indices of the 8-node graph
    labelled = Cell(sub.adjacency, tuple([INPUT] + [f"op{i}" for i in range(1, n - 1)] + [OUTPUT]))
    pr = labelled.pruned()
    idx = [0] + [int(o[2:]) for o in pr.ops[1:-1]] + [n - 1]
    kept = tuple(keep[i] for i in idx)
    return kept, np.ascontiguousarray(A[np.ix_(kept, kept)])


@lru_cache(maxsize=64)
def _structure_properties(kept: tuple[int, ...]) -> dict:
    """Label-free properties (neighbours, topological order, depth) of the pruned graph on ``kept``,
    shared by every labelled cell on that graph (at most 64 graphs), so that canonicalising a cell
    only computes what depends on its labels."""
    A = _node_adjacency()[np.ix_(kept, kept)]
    s = Cell._trusted(np.ascontiguousarray(A), ("",) * len(kept), None)
    depth = s.depth
    depth.setflags(write=False)
    return {"adjacency": s.adjacency, "_neighbours": s._neighbours, "topological_order": s.topological_order,
            "depth": depth}


@lru_cache(maxsize=32768)
def _cell_of(arch: str) -> Cell:
    ops = _ops_of(arch)
    kept, _ = _pruned_structure(tuple(o != "none" for o in ops))
    labels = (INPUT, *ops, OUTPUT)
    return _canonical_pruned(kept, tuple(labels[i] for i in kept))


@lru_cache(maxsize=32768)
def _canonical_pruned(kept: tuple[int, ...], labels: tuple[str, ...]) -> Cell:
    # the 15,625 strings prune to far fewer labelled cells (operations on dead edges do not matter),
    # so the canonical form (WL refinement, the costly part) is computed once per pruned cell
    props = _structure_properties(kept)
    cell = Cell._trusted(props["adjacency"], labels, None)  # read-only, shared by the graph's cells
    cell.__dict__.update(props)
    return cell.canonical()


@lru_cache(maxsize=1)
def _official_order() -> tuple[str, ...]:
    """All 15,625 strings in the official NAS-Bench-201 index order.

    Reproduces the benchmark's generation: the architectures are enumerated node by node (inner
    loops over later edges, operations in :data:`OPS` order) and shuffled by Python's ``random``
    with seed 88, as NAS-Bench-201's ``generate_meta_info`` does.
    """
    archs: list[tuple[str, ...]] = [(a,) for a in OPS]
    for n_in in (2, 3):
        combos: list[tuple[str, ...]] = [()]
        for _ in range(n_in):
            combos = [c + (o,) for c in combos for o in OPS]
        archs = [p + c for p in archs for c in combos]
    strings = [arch_string(a) for a in archs]
    random.Random(88).shuffle(strings)
    return tuple(strings)


class NB201Space(SearchSpace):
    """The NAS-Bench-201 cell space (5^6 = 15,625 architectures)."""

    name = "nb201"
    OPS = OPS
    EDGES = EDGES

    def canonical(self, arch: str) -> str:
        return _canonical(arch)

    def sample(self, rng: np.random.Generator) -> str:
        idx = rng.integers(len(OPS), size=6)
        return arch_string([OPS[i] for i in idx])

    def mutations(self, arch: str) -> list[str]:
        """The 24 single-edge mutations (6 edges x 4 other operations), edge-major, in OPS order."""
        ops = list(parse_arch(arch))
        out = []
        for e in range(6):
            for o in OPS:
                if o != ops[e]:
                    new = ops.copy()
                    new[e] = o
                    out.append(arch_string(new))
        return out

    def enumerate(self) -> Iterator[str]:
        """The 15,625 official strings in official NAS-Bench-201 index order."""
        return iter(_official_order())

    def index(self, arch: str) -> int:
        """Official NAS-Bench-201 index of ``arch``."""
        return _index_map()[self.canonical(arch)]

    def __len__(self) -> int:
        return 15625

    def to_cell(self, arch: str) -> Cell:
        """The operations-on-nodes cell (``none`` deleted, dead nodes pruned, canonical order)."""
        return _cell_of(_canonical(arch))

    def to_network(self, arch: str) -> Network:
        cell = self.to_cell(arch)
        return _network_of(cell)

    def cell_hash(self, arch: str) -> str:
        return self.to_cell(arch).canonical_hash

    def encoding(self, arch: str) -> np.ndarray:
        """Categorical encoding: the operation index of each of the 6 edges."""
        return np.array([OPS.index(o) for o in parse_arch(arch)], dtype=np.int64)

    def categorical_encoding(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The declared categorical encoding (what external peers such as Optuna search over): one
        variable per edge ``"edge_<to><-<from>"``, its choices :data:`OPS`; :meth:`encoding` gives the
        codes of an architecture and :meth:`decode` inverts it."""
        return tuple((f"edge_{t}<-{f}", OPS) for t, f in EDGES)

    def decode(self, codes) -> str:
        """The architecture string of a code vector (one index into :data:`OPS` per edge)."""
        codes = [int(c) for c in codes]
        if len(codes) != 6 or any(not 0 <= c < len(OPS) for c in codes):
            raise ValueError(f"an NB201 code vector has 6 entries in 0..{len(OPS) - 1}, got {codes!r}")
        return arch_string([OPS[c] for c in codes])


@lru_cache(maxsize=65536)
def _ops_of(arch: str) -> tuple[str, ...]:
    return parse_arch(arch)


@lru_cache(maxsize=65536)
def _canonical(arch: str) -> str:
    return arch_string(_ops_of(arch))


@lru_cache(maxsize=1)
def _index_map() -> dict[str, int]:
    return {s: i for i, s in enumerate(_official_order())}


@lru_cache(maxsize=32768)
def _network_of(cell: Cell) -> Network:
    return Network.from_cells(
        [cell] * N_CELLS,
        cell_types=["normal"] * N_CELLS,
        stages=[k // CELLS_PER_STAGE for k in range(N_CELLS)],
    )

