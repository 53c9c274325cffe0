"""Cells and networks: the architecture model every search space converts into.

A :class:`Cell` is a small DAG with **one operation per node** (spaces with operations on edges are
converted so that every operation edge becomes a node, spec 2.2).  A :class:`Network` is a sequence
of cell instances, each with a global position in [0, 1], a cell type and a stage (spec 2.1)::

    Network      = cells: tuple[CellInstance] in forward order, K = len(cells)
    CellInstance = (cell, position pi_k = (k - 1) / (K - 1), cell_type, stage)
    Cell         = (adjacency A in {0,1}^{n x n}, A[u, v] = 1 iff u -> v, ops (n labels), masses a in simplex^n)

Canonical form.  Nodes are put in topological order (longest-path depth from the sources), ties
broken by operation and then by a Weisfeiler-Lehman label of the node's neighbourhood, so node
features computed in that order do not depend on how the cell was written down (spec 9.4).
:meth:`Cell.canonical_hash` is an iterated neighbourhood hash in the style of the NAS-Bench-101
``hash_module``: isomorphic cells (same graph, same labels, any node numbering) hash equal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
import numpy as np

__all__ = ["Cell", "CellInstance", "Network", "INPUT", "OUTPUT", "is_io_label"]

INPUT = "input"
OUTPUT = "output"


def is_io_label(op: str) -> bool:
    """Input/output labels (``input``, ``input_0``, ``input_1``, ``output``) match only their own kind."""
    return op == OUTPUT or op == INPUT or op.startswith(INPUT + "_")


class cached_property:  # noqa: N801 - drop-in for functools.cached_property
    """Computed on first access and stored in the instance ``__dict__`` (later reads never reach
    here).  functools' version takes a lock on every first access (Python < 3.12), which was a
    visible share of preparing the 15,625 NAS-Bench-201 cells."""

    def __init__(self, func):
        self.func = func
        self.__doc__ = func.__doc__

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


#: (adjacency bytes, n, permutation) -> the permuted graph's adjacency, neighbours, depth, topological order
_PERMUTED: dict[tuple, tuple] = {}


#: (K, repr(cell types), repr(stages)) -> the placement strings "@{position:.12g}:{type}:{stage}" of a frame
_PLACES: dict[tuple, tuple[str, ...]] = {}


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, eq=False)
class Cell:
    """A DAG with an operation label on every node.

    Args:
        adjacency: (n, n) 0/1 matrix, ``adjacency[u, v] = 1`` iff there is an edge u -> v; must be acyclic.
        ops: n operation labels; source nodes are usually ``"input"`` and the sink ``"output"``.
        masses: optional (n,) non-negative node masses summing to 1 (default uniform 1/n).

    Raises:
        ValueError: naming the bad part (shape, self-loop, cycle, label count, masses).
    """

    adjacency: np.ndarray
    ops: tuple[str, ...]
    masses: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        A = np.asarray(self.adjacency)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"cell adjacency must be a square matrix, got shape {A.shape}")
        ok01 = (A == 0) | (A == 1)
        if not ok01.all():
            bad = A[~ok01].ravel()[0]
            raise ValueError(f"cell adjacency entries must be 0 or 1, found {bad!r}")
        n = A.shape[0]
        if n == 0:
            raise ValueError("a cell needs at least one node")
        ops = tuple(str(o) for o in self.ops)
        if len(ops) != n:
            raise ValueError(f"cell has {n} nodes but {len(ops)} operation labels")
        A = A.astype(np.int8)
        if np.any(np.diag(A)):
            u = int(np.flatnonzero(np.diag(A))[0])
            raise ValueError(f"cell adjacency has a self-loop at node {u} ({ops[u]})")
        order = _topological_order(A)
        if order is None:
            raise ValueError(f"cell adjacency has a cycle (ops {list(ops)})")
        A.setflags(write=False)
        object.__setattr__(self, "adjacency", A)
        object.__setattr__(self, "ops", ops)
        if self.masses is not None:
            m = np.asarray(self.masses, dtype=float)
            if m.shape != (n,):
                raise ValueError(f"cell masses must have shape ({n},), got {m.shape}")
            if np.any(m < 0) or not np.isclose(m.sum(), 1.0):
                raise ValueError("cell masses must be non-negative and sum to 1")
            m.setflags(write=False)
            object.__setattr__(self, "masses", m)

    @classmethod
    def _trusted(cls, A: np.ndarray, ops: tuple[str, ...], masses: np.ndarray | None) -> "Cell":
        """Build without validation (A already a validated DAG's sub/permuted matrix)."""
        obj = object.__new__(cls)
        A = np.ascontiguousarray(A, dtype=np.int8)
        A.setflags(write=False)
        object.__setattr__(obj, "adjacency", A)
        object.__setattr__(obj, "ops", tuple(ops))
        object.__setattr__(obj, "masses", masses)
        return obj

    # -- basic structure ----------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Number of nodes."""
        return int(self.adjacency.shape[0])

    @property
    def node_masses(self) -> np.ndarray:
        """Node masses (uniform 1/n unless given)."""
        return self.masses if self.masses is not None else np.full(self.n, 1.0 / self.n)

    @property
    def n_edges(self) -> int:
        return int(self.adjacency.sum())

    @cached_property
    def _neighbours(self) -> tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]:
        rows = self.adjacency.tolist()
        rng = range(len(rows))
        chi = tuple(tuple(v for v in rng if r[v]) for r in rows)  # increasing: sorted
        par = tuple(tuple(u for u in rng if rows[u][v]) for v in rng)
        return par, chi

    @property
    def parents(self) -> tuple[tuple[int, ...], ...]:
        """Parents of each node (sorted)."""
        return self._neighbours[0]

    @property
    def children(self) -> tuple[tuple[int, ...], ...]:
        """Children of each node (sorted)."""
        return self._neighbours[1]

    @cached_property
    def topological_order(self) -> tuple[int, ...]:
        """Kahn order, smallest index first among ready nodes."""
        n, chi = self.n, self.children
        indeg = [len(p) for p in self.parents]
        ready = [v for v in range(n) if indeg[v] == 0]
        order: list[int] = []
        while ready:
            u = ready.pop(0)
            order.append(u)
            for v in chi[u]:
                indeg[v] -= 1
                if indeg[v] == 0:
                    ready.append(v)
            ready.sort()
        if len(order) != n:
            raise ValueError("cell adjacency has a cycle")
        return tuple(order)

    @cached_property
    def depth(self) -> np.ndarray:
        """Longest-path depth of each node from the sources (sources have depth 0)."""
        d = [0] * self.n
        par = self.parents
        for v in self.topological_order:
            if par[v]:
                d[v] = max(d[u] for u in par[v]) + 1
        return np.array(d, dtype=int)

    @cached_property
    def _wl(self) -> tuple[tuple[int, ...], str]:
        """Colour refinement (1-WL on the directed graph, labels = operations).

        Each round a node's colour becomes the rank, among the cell's distinct signatures, of
        (colour, sorted parent colours, sorted child colours); rounds stop when the number of
        colours stops growing (an isomorphism-invariant rule).  Returns the final colours and the
        md5 of the whole sequence of sorted signature lists, which is equal for isomorphic cells.
        """
        n = self.n
        par, chi = self._neighbours
        sigs: list = list(zip(self.ops, map(len, par), map(len, chi)))
        history = []
        n_classes = 0
        for _ in range(n + 1):
            uniq = sorted(set(sigs))
            history.append(uniq)
            rank = dict(zip(uniq, range(len(uniq))))
            colours = list(map(rank.__getitem__, sigs))
            if len(uniq) <= n_classes:
                break
            n_classes = len(uniq)
            get = colours.__getitem__
            # (colour, sorted parent colours, sorted child colours); sorted() only for 2+ neighbours
            sigs = [
                (colours[v],
                 tuple(sorted(map(get, pv))) if len(pv) > 1 else tuple(map(get, pv)),
                 tuple(sorted(map(get, cv))) if len(cv) > 1 else tuple(map(get, cv)))
                for v, pv, cv in zip(range(n), par, chi)
            ]
        return tuple(colours), _md5(repr(history))

    @cached_property
    def canonical_order(self) -> np.ndarray:
        """Node permutation: topological (by depth), ties by operation, then by WL label, then index."""
        colours = self._wl[0]
        depth, ops = self.depth.tolist(), self.ops
        keys = sorted([(depth[v], ops[v], colours[v], v) for v in range(self.n)])
        return np.array([k[-1] for k in keys], dtype=int)

    @cached_property
    def canonical_hash(self) -> str:
        """Isomorphism-invariant fingerprint (equal for isomorphic labelled DAGs, whatever the numbering)."""
        masses = "" if self.masses is None else ",".join(f"{x:.12g}" for x in self.masses[self.canonical_order])
        return _md5(self._wl[1] + "|" + masses)

    def canonical(self) -> "Cell":
        """The same cell with nodes renumbered in :attr:`canonical_order` (self when already so)."""
        p = self.canonical_order
        pl = p.tolist()
        n = self.n
        if pl == list(range(n)):
            return self
        # the renumbered graph's label-free properties depend on the graph and the permutation only:
        # shared by every labelling of it (NAS-Bench-201's 15,625 cells have a few hundred)
        key = (self.adjacency.tobytes(), n, tuple(pl))
        st = _PERMUTED.get(key)
        if st is None:
            A = np.ascontiguousarray(self.adjacency[p][:, p])
            A.setflags(write=False)
            invl = [0] * n
            for new_i, old_i in enumerate(pl):
                invl[old_i] = new_i
            par, chi = self._neighbours
            nb = (
                tuple(tuple(sorted([invl[u] for u in par[i]])) for i in pl),
                tuple(tuple(sorted([invl[u] for u in chi[i]])) for i in pl),
            )
            depth = self.depth[p]
            depth.setflags(write=False)
            shape = Cell._trusted(A, ("",) * n, None)
            shape.__dict__["_neighbours"] = nb
            st = (A, nb, depth, shape.topological_order)
            if len(_PERMUTED) > 100_000:
                _PERMUTED.clear()
            _PERMUTED[key] = st
        A, nb, depth, topo = st
        masses = None if self.masses is None else self.masses[p]
        c = Cell._trusted(A, tuple([self.ops[i] for i in pl]), masses)
        # carry the isomorphism-invariant results over instead of recomputing them
        colours, digest = self._wl
        c.__dict__.update(
            _neighbours=nb, depth=depth, topological_order=topo, canonical_hash=self.canonical_hash,
            _wl=(tuple([colours[i] for i in pl]), digest), canonical_order=np.arange(n),
        )
        return c

    def permuted(self, perm: Sequence[int]) -> "Cell":
        """The cell relabelled so that new node i is old node ``perm[i]`` (an isomorphic copy)."""
        p = np.asarray(perm, dtype=int)
        if sorted(p.tolist()) != list(range(self.n)):
            raise ValueError(f"perm must be a permutation of range({self.n}), got {list(p)}")
        masses = None if self.masses is None else self.masses[p]
        return Cell(self.adjacency[np.ix_(p, p)], tuple(self.ops[i] for i in p), masses)

    def pruned(self, keep_io: bool = True) -> "Cell":
        """Drop nodes that are not on a path from a source labelled input to the node labelled output.

        Input and output nodes are always kept (``keep_io``); masses, if any, are renormalised.
        """
        n = self.n
        inputs = [v for v in range(n) if self.ops[v] == INPUT or self.ops[v].startswith(INPUT + "_")]
        outputs = [v for v in range(n) if self.ops[v] == OUTPUT]
        fwd = _reach(self.children, inputs)
        bwd = _reach(self.parents, outputs)
        keep = fwd & bwd
        if keep_io:
            keep[inputs] = True
            keep[outputs] = True
        idx = np.flatnonzero(keep)
        masses = None
        if self.masses is not None:
            m = self.masses[idx]
            masses = m / m.sum() if m.sum() > 0 else None
        return Cell._trusted(self.adjacency[np.ix_(idx, idx)], tuple(self.ops[i] for i in idx), masses)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cell) and self.canonical_hash == other.canonical_hash

    def __hash__(self) -> int:
        return hash(self.canonical_hash)

    def __repr__(self) -> str:
        edges = [(int(u), int(v)) for u, v in zip(*np.nonzero(self.adjacency))]
        return f"Cell(n={self.n}, ops={list(self.ops)}, edges={edges})"


def _topological_order(A: np.ndarray) -> list[int] | None:
    """Kahn's algorithm (smallest index first); None when A has a cycle."""
    n = A.shape[0]
    rows = A.tolist()
    indeg = [sum(rows[u][v] for u in range(n)) for v in range(n)]
    ready = [v for v in range(n) if indeg[v] == 0]
    order: list[int] = []
    while ready:
        u = ready.pop(0)
        order.append(u)
        for v in range(n):
            if rows[u][v]:
                indeg[v] -= 1
                if indeg[v] == 0:
                    ready.append(v)
        ready.sort()
    return order if len(order) == n else None


def _reach(nbrs: tuple[tuple[int, ...], ...], starts: list[int]) -> np.ndarray:
    seen = np.zeros(len(nbrs), dtype=bool)
    stack = list(starts)
    seen[stack] = True
    while stack:
        u = stack.pop()
        for v in nbrs[u]:
            if not seen[v]:
                seen[v] = True
                stack.append(v)
    return seen


@dataclass(frozen=True)
class CellInstance:
    """One cell placed in a network: global position in [0, 1], type (e.g. normal/reduction), stage."""

    cell: Cell
    position: float
    cell_type: str | None = None
    stage: int | None = None


@dataclass(frozen=True, eq=False)
class Network:
    """Cells in forward order with global positions; optional cell masses (default uniform 1/K)."""

    cells: tuple[CellInstance, ...]
    masses: np.ndarray | None = None

    def __post_init__(self) -> None:
        cells = tuple(self.cells)
        if not cells:
            raise ValueError("a network needs at least one cell")
        for k, ci in enumerate(cells):
            if not isinstance(ci, CellInstance):
                raise ValueError(f"network cell {k} is a {type(ci).__name__}, expected CellInstance")
            if not 0.0 <= ci.position <= 1.0:
                raise ValueError(f"network cell {k} has position {ci.position}, expected a value in [0, 1]")
        object.__setattr__(self, "cells", cells)
        if self.masses is not None:
            m = np.asarray(self.masses, dtype=float)
            if m.shape != (len(cells),) or np.any(m < 0) or not np.isclose(m.sum(), 1.0):
                raise ValueError(f"network masses must be {len(cells)} non-negative numbers summing to 1")
            object.__setattr__(self, "masses", m)

    @classmethod
    def from_cells(
        cls,
        cells: Sequence[Cell],
        cell_types: Sequence[str | None] | None = None,
        stages: Sequence[int | None] | None = None,
        masses: np.ndarray | None = None,
    ) -> "Network":
        """Place cells at positions pi_k = (k - 1) / (K - 1) (pi = 0 when K = 1)."""
        K = len(cells)
        types = list(cell_types) if cell_types is not None else [None] * K
        stg = list(stages) if stages is not None else [None] * K
        if len(types) != K or len(stg) != K:
            raise ValueError(f"need {K} cell types and stages, got {len(types)} and {len(stg)}")
        pos = [0.0] * K if K == 1 else [k / (K - 1) for k in range(K)]
        for k, c in enumerate(cells):
            if not isinstance(c, Cell):
                raise ValueError(f"network cell {k} is a {type(c).__name__}, expected Cell")
        # positions in [0, 1] by construction: the instances are built without their per-field
        # frozen-dataclass set-up (a NAS-Bench-201 network has 15; the space has 15,625 networks)
        new = object.__new__
        insts = []
        for c, p, t, s in zip(cells, pos, types, stg):
            ci = new(CellInstance)
            ci.__dict__.update(cell=c, position=p, cell_type=t, stage=s)
            insts.append(ci)
        net = cls(tuple(insts), masses)
        # the placement strings of the hash depend on the frame only: made once per frame
        key = (K, repr(types), repr(stg))
        places = _PLACES.get(key)
        if places is None:
            places = tuple(f"@{p:.12g}:{t}:{s}" for p, t, s in zip(pos, types, stg))
            if len(_PLACES) < 10_000:
                _PLACES[key] = places
        net.__dict__["canonical_hash"] = net._hash(places)
        return net

    @property
    def K(self) -> int:
        return len(self.cells)

    @property
    def cell_masses(self) -> np.ndarray:
        return self.masses if self.masses is not None else np.full(self.K, 1.0 / self.K)

    @property
    def positions(self) -> np.ndarray:
        return np.array([c.position for c in self.cells], dtype=float)

    @property
    def cell_types(self) -> list[str | None]:
        return [c.cell_type for c in self.cells]

    @cached_property
    def canonical_hash(self) -> str:
        return self._hash([f"@{c.position:.12g}:{c.cell_type}:{c.stage}" for c in self.cells])

    def _hash(self, places) -> str:
        parts = [c.cell.canonical_hash + pl for c, pl in zip(self.cells, places)]
        m = "" if self.masses is None else ",".join(f"{x:.12g}" for x in self.masses)
        return _md5(";".join(parts) + "|" + m)

    def unique_cells(self) -> dict[str, Cell]:
        """Distinct cells by canonical hash (a network of K identical cells has one)."""
        out: dict[str, Cell] = {}
        for c in self.cells:
            out.setdefault(c.cell.canonical_hash, c.cell)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Network) and self.canonical_hash == other.canonical_hash

    def __hash__(self) -> int:
        return hash(self.canonical_hash)
