"""DARTS / NAS-Bench-301: normal + reduction genotypes, cells on nodes, the 8-cell macro skeleton.

Architecture strings are the compact genotype of the NAS-Bench-301 / NASLib data files::

    [[(0, 0), (1, 5), (1, 1), (0, 1), (1, 3), (0, 3), (1, 3), (3, 2)],    # normal cell
     [(1, 0), (0, 2), (1, 3), (0, 3), (3, 0), (0, 1), (2, 0), (3, 6)]]    # reduction cell

(written on one line).  Each cell lists 8 ``(input_node, op_id)`` pairs, two per intermediate node
2..5; inputs 0 and 1 are the outputs of the two previous cells, an input of node k must be < k, and
the two inputs of a node differ.  op ids: :data:`OPS`.  The output concatenates nodes 2..5.

Cell on nodes (spec 2.2): 2 inputs (``input_0``, ``input_1``) + 8 operation nodes + 4 ``sum`` nodes
+ 1 output = 15 nodes (``sum_nodes=False``: 11 nodes, each sum folded into its two operations).
Macro skeleton: the 8-cell search network with reduction cells at 1/3 and 2/3 of the depth
(cells 2 and 5: N N R N N R N N), positions k / 7, stages 0 0 1 1 1 2 2 2.

Canonical strings sort the two pairs of every node (their order carries no meaning); isomorphic
cells beyond that share a :attr:`hotnas.cells.Cell.canonical_hash`, which distance caches key on.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..cells import OUTPUT, Cell, Network
from .base import SearchSpace, parse_literal

__all__ = ["DartsSpace", "OPS", "parse_genotype", "format_genotype", "genotype_cell"]

OPS: tuple[str, ...] = (
    "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
CELL_NAMES = ("normal", "reduction")
N_NODES = 4  # intermediate nodes per cell

Genotype = tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]


def parse_genotype(arch: str | list | tuple) -> Genotype:
    """Parse and validate a compact genotype (string or nested lists).

    Raises:
        ValueError: naming the cell, node and pair at fault (syntax, cell count, pair count,
            unknown op id, an input that is not an earlier node, repeated inputs).
    """
    g = parse_literal(arch, "DARTS genotype", "a list literal")
    if not isinstance(g, (list, tuple)) or len(g) != 2:
        n = len(g) if isinstance(g, (list, tuple)) else type(g).__name__
        raise ValueError(f"DARTS genotype must hold 2 cells (normal, reduction), got {n}")
    cells = []
    for name, cell in zip(CELL_NAMES, g):
        if not isinstance(cell, (list, tuple)) or len(cell) != 2 * N_NODES:
            n = len(cell) if isinstance(cell, (list, tuple)) else type(cell).__name__
            raise ValueError(f"DARTS {name} cell must list {2 * N_NODES} (input, op) pairs, got {n}")
        pairs = []
        for k, pair in enumerate(cell):
            node = 2 + k // 2
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                    or not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in pair)):
                raise ValueError(f"DARTS {name} cell pair {k} (node {node}) must be two integers (input, op), got {pair!r}")
            inp, op = int(pair[0]), int(pair[1])
            if not 0 <= op < len(OPS):
                raise ValueError(f"DARTS {name} cell pair {k} (node {node}): unknown op id {op}; expected 0..{len(OPS) - 1}")
            if not 0 <= inp < node:
                raise ValueError(
                    f"DARTS {name} cell pair {k}: node {node} takes input {inp}, which is not an earlier node "
                    f"(allowed 0..{node - 1}; a later node would make a cycle)"
                )
            pairs.append((inp, op))
        for j in range(N_NODES):
            if pairs[2 * j][0] == pairs[2 * j + 1][0]:
                raise ValueError(f"DARTS {name} cell node {j + 2} takes input {pairs[2 * j][0]} twice")
        cells.append(tuple(pairs))
    return (cells[0], cells[1])


def format_genotype(g: Genotype) -> str:
    """The compact string, in the data files' spelling."""
    return repr([list(c) for c in g])


def _canonical_genotype(g: Genotype) -> Genotype:
    out = []
    for cell in g:
        pairs: list[tuple[int, int]] = []
        for j in range(N_NODES):
            pairs.extend(sorted((cell[2 * j], cell[2 * j + 1])))
        out.append(tuple(pairs))
    return (out[0], out[1])


def genotype_cell(pairs: tuple[tuple[int, int], ...], sum_nodes: bool = True) -> Cell:
    """One DARTS cell as a Cell with operations on nodes (canonical node order)."""
    n_ops = 2 * N_NODES
    if sum_nodes:
        n = 2 + n_ops + N_NODES + 1
        out = n - 1
        A = np.zeros((n, n), dtype=np.int8)

        def source(i: int) -> int:  # node feeding consumers of DARTS node i
            return i if i < 2 else 2 + n_ops + (i - 2)

        for k, (inp, _op) in enumerate(pairs):
            A[source(inp), 2 + k] = 1
            A[2 + k, 2 + n_ops + k // 2] = 1
        for j in range(N_NODES):
            A[2 + n_ops + j, out] = 1
        labels = ["input_0", "input_1"] + [OPS[op] for _, op in pairs] + ["sum"] * N_NODES + [OUTPUT]
    else:
        n = 2 + n_ops + 1
        out = n - 1
        A = np.zeros((n, n), dtype=np.int8)
        for k, (inp, _op) in enumerate(pairs):
            if inp < 2:
                A[inp, 2 + k] = 1
            else:
                j = inp - 2
                A[2 + 2 * j, 2 + k] = 1
                A[2 + 2 * j + 1, 2 + k] = 1
        for k in range(n_ops):
            A[2 + k, out] = 1
        labels = ["input_0", "input_1"] + [OPS[op] for _, op in pairs] + [OUTPUT]
    return Cell(A, tuple(labels)).pruned().canonical()


@lru_cache(maxsize=65536)
def _cell_cached(pairs: tuple[tuple[int, int], ...], sum_nodes: bool) -> Cell:
    return genotype_cell(pairs, sum_nodes)


class DartsSpace(SearchSpace):
    """The DARTS cell space (normal + reduction cell) on the 8-cell search network.

    Args:
        n_cells: cells of the macro network (8: the search network; 20: the evaluation network).
        sum_nodes: 15-node cells with explicit sum nodes (default) or the 11-node folded variant.
    """

    name = "darts"
    OPS = OPS

    def __init__(self, n_cells: int = 8, sum_nodes: bool = True) -> None:
        if n_cells < 3:
            raise ValueError(f"a DARTS network needs at least 3 cells, got n_cells={n_cells}")
        self.n_cells = int(n_cells)
        self.sum_nodes = bool(sum_nodes)
        red = {n_cells // 3, 2 * n_cells // 3}
        self.cell_types = ["reduction" if k in red else "normal" for k in range(n_cells)]
        stages, s = [], 0
        for t in self.cell_types:
            s += t == "reduction"
            stages.append(s)
        self.stages = stages

    def parse(self, arch: str) -> Genotype:
        return parse_genotype(arch)

    def canonical(self, arch: str) -> str:
        return _canonical_str(arch) if isinstance(arch, str) else format_genotype(_canonical_genotype(parse_genotype(arch)))

    def sample(self, rng: np.random.Generator) -> str:
        cells = []
        for _ in CELL_NAMES:
            pairs = []
            for j in range(N_NODES):
                inputs = rng.choice(j + 2, size=2, replace=False)
                ops = rng.integers(len(OPS), size=2)
                pairs.extend((int(i), int(o)) for i, o in zip(inputs, ops))
            cells.append(tuple(pairs))
        return format_genotype(_canonical_genotype((cells[0], cells[1])))

    def mutations(self, arch: str) -> list[str]:
        """Change one pair's operation (6 others) or one input (another earlier node not already used)."""
        g = parse_genotype(arch)
        me = format_genotype(_canonical_genotype(g))
        out: dict[str, None] = {}
        for c in range(2):
            for k in range(2 * N_NODES):
                inp, op = g[c][k]
                other = g[c][k ^ 1][0]
                cands = [(inp, o) for o in range(len(OPS)) if o != op]
                cands += [(i, op) for i in range(2 + k // 2) if i != inp and i != other]
                for new in cands:
                    cell = list(g[c])
                    cell[k] = new
                    ng = (tuple(cell), g[1]) if c == 0 else (g[0], tuple(cell))
                    s = format_genotype(_canonical_genotype(ng))
                    if s != me:
                        out.setdefault(s, None)
        return list(out)

    def cells(self, arch: str) -> tuple[Cell, Cell]:
        g = _canonical_genotype(parse_genotype(arch))
        return _cell_cached(g[0], self.sum_nodes), _cell_cached(g[1], self.sum_nodes)

    def to_network(self, arch: str) -> Network:
        return _network_cached(arch, self.n_cells, self.sum_nodes)

    def _build_network(self, arch: str) -> Network:
        normal, reduction = self.cells(arch)
        return Network.from_cells(
            [reduction if t == "reduction" else normal for t in self.cell_types],
            cell_types=self.cell_types,
            stages=self.stages,
        )

    def encoding(self, arch: str) -> np.ndarray:
        """Categorical encoding (32 symbols: input and op of every pair of both cells)."""
        return _encoding_cached(arch)


@lru_cache(maxsize=65536)
def _canonical_str(arch: str) -> str:
    return format_genotype(_canonical_genotype(parse_genotype(arch)))


@lru_cache(maxsize=65536)
def _network_cached(arch: str, n_cells: int, sum_nodes: bool) -> Network:
    return DartsSpace(n_cells, sum_nodes)._build_network(arch)


@lru_cache(maxsize=65536)
def _encoding_cached(arch: str) -> np.ndarray:
    g = _canonical_genotype(parse_genotype(arch))
    out = np.array([x for cell in g for pair in cell for x in pair], dtype=np.int64)
    out.setflags(write=False)
    return out
