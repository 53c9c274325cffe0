"""NAS-Bench-101: adjacency matrix + operations, pruning, canonical graph, mutations.

Architecture strings are the flattened spec of the NASLib data files: an n x n upper-triangular
0/1 adjacency matrix (row-major, n*n integers) followed by n operation ids, written as a tuple,
e.g. ``"(0, 1, 1, ..., 0, 2, 2, 4, 4, 4, 1)"`` (56 integers for 7 nodes).  Operation ids
(NASLib): 0 input, 1 output, 2 conv3x3-bn-relu, 3 conv1x1-bn-relu, 4 maxpool3x3.

As in NAS-Bench-101's ``ModelSpec``, nodes that are not on a path from the input to the output are
pruned; the input must reach the output.  The canonical string is the pruned graph in canonical
node order (:attr:`hotnas.cells.Cell.canonical_order`), so isomorphic specs share one string.
NAS-Bench-101's limits (at most 7 nodes, at most 9 edges) are checked by :meth:`NB101Space.canonical`
only with ``strict=True``: some published spec files hold cells beyond them.  Macro skeleton:
3 stacks of 3 identical cells, K = 9, stages 0, 1, 2.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..cells import INPUT, OUTPUT, Cell, Network
from .base import SearchSpace, parse_literal

__all__ = ["NB101Space", "OPS", "OP_IDS", "parse_spec", "format_spec"]

#: operation labels by NASLib id
OP_IDS: dict[int, str] = {0: INPUT, 1: OUTPUT, 2: "conv3x3-bn-relu", 3: "conv1x1-bn-relu", 4: "maxpool3x3"}
OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
_ID_OF = {v: k for k, v in OP_IDS.items()}
MAX_NODES, MAX_EDGES = 7, 9


def parse_spec(arch: str | tuple | list) -> tuple[np.ndarray, tuple[int, ...]]:
    """(matrix, op ids) of a flattened spec; validated.

    Raises:
        ValueError: naming the fault: not a sequence of integers, a length that is not n*n + n,
            entries other than 0/1, an edge at or below the diagonal (a cycle or self-loop),
            unknown op ids, input/output not first/last.
    """
    t = parse_literal(arch, "NB101 spec", "a tuple of integers")
    if not isinstance(t, (list, tuple)) or not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in t):
        raise ValueError(f"NB101 spec must be a sequence of integers, got {str(arch)[:80]!r}")
    L = len(t)
    n = next((k for k in range(2, MAX_NODES + 1) if k * k + k == L), None)
    if n is None:
        raise ValueError(f"NB101 spec has {L} integers; expected n*n + n for n in 2..{MAX_NODES} (56 for 7 nodes)")
    A = np.array(t[: n * n], dtype=np.int64).reshape(n, n)
    ops = tuple(int(x) for x in t[n * n :])
    bad = np.argwhere((A != 0) & (A != 1))
    if bad.size:
        i, j = bad[0]
        raise ValueError(f"NB101 matrix entry ({i}, {j}) is {A[i, j]}; expected 0 or 1")
    low = np.argwhere(np.tril(A) != 0)
    if low.size:
        i, j = low[0]
        kind = "a self-loop" if i == j else "a backward edge (cycle)"
        raise ValueError(f"NB101 matrix must be strictly upper triangular; entry ({i}, {j}) is {kind}")
    for k, o in enumerate(ops):
        if o not in OP_IDS:
            raise ValueError(f"NB101 node {k} has unknown op id {o}; expected one of {sorted(OP_IDS)}")
    if ops[0] != 0 or ops[-1] != 1:
        raise ValueError(f"NB101 node 0 must be the input (id 0) and node {n - 1} the output (id 1), got ops {ops}")
    if 0 in ops[1:] or 1 in ops[:-1]:
        raise ValueError(f"NB101 spec has more than one input or output node: ops {ops}")
    return A, ops


def format_spec(A: np.ndarray, ops: tuple[int, ...] | list[int]) -> str:
    return repr(tuple(int(x) for x in np.asarray(A).ravel()) + tuple(int(o) for o in ops))


def _cell_from(A: np.ndarray, ops: tuple[int, ...]) -> Cell:
    return Cell(A, tuple(OP_IDS[o] for o in ops))


@lru_cache(maxsize=65536)
def _canonical_cell(arch: str) -> Cell:
    A, ops = parse_spec(arch)
    cell = _cell_from(A, ops).pruned()
    inp, out = 0, cell.n - 1
    if not _reaches(cell, inp, out):
        raise ValueError(f"NB101 spec {arch[:60]}...: the input does not reach the output")
    return cell.canonical()


def _reaches(cell: Cell, s: int, t: int) -> bool:
    seen, stack = {s}, [s]
    while stack:
        u = stack.pop()
        for v in cell.children[u]:
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return t in seen


def _spec_of(cell: Cell) -> str:
    # canonical order puts the input first (depth 0) and the output last (largest depth)
    return format_spec(cell.adjacency, [_ID_OF[o] for o in cell.ops])


def _topological(A: np.ndarray) -> list[int]:
    """A topological order of the DAG ``A`` (Kahn's algorithm, smallest index first)."""
    indeg = A.sum(axis=0).astype(int)
    ready = sorted(int(v) for v in np.flatnonzero(indeg == 0))
    order: list[int] = []
    while ready:
        v = ready.pop(0)
        order.append(v)
        for w in np.flatnonzero(A[v]):
            indeg[w] -= 1
            if indeg[w] == 0:
                ready.append(int(w))
                ready.sort()
    return order


class NB101Space(SearchSpace):
    """The NAS-Bench-101 cell space (cells of at most 7 nodes and 9 edges)."""

    name = "nb101"
    OPS = OPS

    def canonical(self, arch: str, strict: bool = False) -> str:
        cell = _canonical_cell(arch if isinstance(arch, str) else format_spec(*_as_pair(arch)))
        if strict:
            if cell.n > MAX_NODES:
                raise ValueError(f"NB101 cell has {cell.n} nodes after pruning; at most {MAX_NODES}")
            if cell.n_edges > MAX_EDGES:
                raise ValueError(f"NB101 cell has {cell.n_edges} edges after pruning; at most {MAX_EDGES}")
        return _spec_of(cell)

    def to_cell(self, arch: str) -> Cell:
        return _canonical_cell(self.canonical(arch))

    def sample(self, rng: np.random.Generator) -> str:
        """NAS-Bench-101's ``random_spec``: a random 7-node upper-triangular graph, retried until valid."""
        while True:
            A = np.triu(rng.integers(0, 2, size=(MAX_NODES, MAX_NODES)), 1)
            ops = (0,) + tuple(int(x) for x in rng.integers(2, 5, size=MAX_NODES - 2)) + (1,)
            try:
                return self.canonical(format_spec(A, ops), strict=True)
            except ValueError:
                continue

    def mutations(self, arch: str) -> list[str]:
        """Valid canonical neighbours, a symmetric relation (b in mutations(a) iff a in mutations(b)):

        * flip one edge of the canonical graph, when no node is pruned by it (same node count);
        * change one operation;
        * insert a node with any operation on an edge p -> c (p -> u -> c replaces p -> c), and its
          inverse: remove a node u with one parent p and one child c when p -> c is not an edge
          (p -> c replaces p -> u -> c).

        Flipping edges of the pruned graph alone (the earlier rule) was one-way: removing an edge can
        prune nodes, which no single flip restores (329 one-way pairs in 200 samples)."""
        me = self.canonical(arch)
        A, ops = parse_spec(me)
        n = A.shape[0]
        out: dict[str, None] = {}
        cands: list[tuple[np.ndarray, tuple[int, ...], int]] = []  # (graph, ops, expected node count)
        for i in range(n):
            for j in range(i + 1, n):
                B = A.copy()
                B[i, j] = 1 - B[i, j]
                cands.append((B, ops, n))
        # an edge against the current node order (j -> i, i < j) when i does not reach j (no cycle):
        # two parallel nodes may be listed in either order, so this is the reverse of removing an
        # edge between them
        reach = np.eye(n, dtype=bool)
        for v in range(n - 1, -1, -1):
            for w in np.flatnonzero(A[v]):
                reach[v] |= reach[w]
        for i in range(1, n - 1):
            for j in range(i + 1, n - 1):
                if not reach[i, j]:
                    B = A.copy()
                    B[j, i] = 1
                    order = _topological(B)
                    cands.append((B[np.ix_(order, order)], tuple(ops[v] for v in order), n))
        for k in range(1, n - 1):
            for o in (2, 3, 4):
                if o != ops[k]:
                    cands.append((A, ops[:k] + (o,) + ops[k + 1 :], n))
        if n < MAX_NODES:
            for p_, c_ in zip(*np.nonzero(A)):
                p, c = int(p_), int(c_)
                B = np.zeros((n + 1, n + 1), dtype=A.dtype)
                keep = [v if v < c else v + 1 for v in range(n)]  # the new node takes index c
                B[np.ix_(keep, keep)] = A
                B[p, c + 1] = 0
                B[p, c] = 1
                B[c, c + 1] = 1
                for o in (2, 3, 4):
                    cands.append((B, ops[:c] + (o,) + ops[c:], n + 1))
        for u in range(1, n - 1):
            par, chi = np.flatnonzero(A[:, u]), np.flatnonzero(A[u])
            if len(par) == 1 and len(chi) == 1 and not A[par[0], chi[0]]:
                rest = [v for v in range(n) if v != u]
                B = A[np.ix_(rest, rest)].copy()
                B[rest.index(int(par[0])), rest.index(int(chi[0]))] = 1
                cands.append((B, ops[:u] + ops[u + 1 :], n - 1))
        for B, o, size in cands:
            try:
                s = self.canonical(format_spec(B, o), strict=True)
            except ValueError:
                continue
            if s != me and parse_spec(s)[0].shape[0] == size:
                out.setdefault(s, None)
        return list(out)

    def to_network(self, arch: str) -> Network:
        cell = self.to_cell(arch)
        return _network_of(cell)

    def encoding(self, arch: str) -> np.ndarray:
        """Canonical graph padded to 7 nodes: 21 upper-triangular bits + 7 op ids (-1 = padding)."""
        return _encoding_cached(self.canonical(arch))



def _as_pair(arch) -> tuple[np.ndarray, tuple[int, ...]]:
    if isinstance(arch, dict):
        A = np.asarray(arch["matrix"])
        ops = tuple(_ID_OF[o] if isinstance(o, str) else int(o) for o in arch["ops"])
        return A, ops
    return parse_spec(arch)


@lru_cache(maxsize=65536)
def _network_of(cell: Cell) -> Network:
    return Network.from_cells([cell] * 9, cell_types=["normal"] * 9, stages=[k // 3 for k in range(9)])


@lru_cache(maxsize=65536)
def _encoding_cached(canon: str) -> np.ndarray:
    A, ops = parse_spec(canon)
    n = A.shape[0]
    P = np.zeros((MAX_NODES, MAX_NODES), dtype=np.int64)
    P[:n, :n] = A
    o = np.full(MAX_NODES, -1, dtype=np.int64)
    o[:n] = ops
    out = np.concatenate([P[np.triu_indices(MAX_NODES, 1)], o])
    out.setflags(write=False)
    return out
