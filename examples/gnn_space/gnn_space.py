"""A worked plugin: a small GNN-style cell space, its operations' features and a synthetic table.

Load it from a config (``plugins = ["gnn_space.py"]``, resolved relative to the config's folder) or
on the command line (``sdot-nas list --plugin examples/gnn_space/gnn_space.py``). It registers

* the search space ``"gnn4"`` (:class:`GNNSpace`) and
* the benchmark ``"gnn4-synthetic"`` (:class:`SyntheticGNNBenchmark`: the synthetic table below).

**The space.** A cell is a DAG of an input node (the node features, index 0), four operation nodes
1..4 and an output node. Operation node i takes its input from one earlier node j in {0, ..., i-1}
and applies one operation of :data:`OPS` (graph convolutions gcn, gat, sage, gin, cheb, arma, k-gnn;
a node-wise fully connected layer fc; skip). Nodes no later node reads are summed into the output.
An architecture is written ``"gcn<0|gat<1|sage<0|skip<2"`` (node i's ``op<input``); there are
1*2*3*4 * 9^4 = 157,464 of them. A mutation changes one node's operation or one node's input: every
mutation is undone by one, so mutations are symmetric (the flow's graph assumes it). ``canonical``
only validates and normalises the string: two architectures that differ by renumbering parallel
nodes are distinct strings here (the distances give 0 between them), a simplification a real space
would remove by canonicalising the DAG.

**The operations' features** (:data:`OPERATIONS`, read by the hotnn, otmann and tw distances):
families ``spectral`` (gcn, cheb, arma: polynomial filters of the graph Laplacian), ``spatial``
(sage, gin, k-gnn: neighbourhood aggregators), ``attention`` (gat), ``linear`` (fc, no graph) and
skip (``passthrough``); within-family cost 0.3, gcn-gat 0.5 (:data:`OPERATION_COSTS`); compute
weights relative to gcn = 1 (cheb and arma 1.5: K = 2 hops / stacks; gat 1.5: attention scores;
gin and k-gnn 1.25: an MLP per node; fc 0.5; skip 0).

**The synthetic table** (:func:`synthetic_value`: a documented formula evaluated on query, so no
157,464-row file ships; :func:`synthetic_table` computes all of it vectorised, which ``optimum``
uses): with d_i the number of
operation nodes on the path from the input to node i, q the operation qualities of :data:`QUALITY`,
F the number of distinct operation families used (skip excluded), D = max_i d_i, and u, u' in
[-1, 1) the entries at the architecture's index (its position in ``GNNSpace().enumerate()``) of
two fixed arrays ``numpy.random.default_rng(18).uniform(-1, 1, (2, 157464))``::

    val  = 60 + sum_i q[op_i] * 0.9 ** (d_i - 1) + 1.5 F - 0.8 (D - 2.5)^2 + 0.5 u
    test = val - 0.3 + 0.3 u'

So depth 2-3 and several families help, attention and aggregators are the best single operations,
and nothing here was measured on a real graph data set: it exists to exercise the library.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from functools import lru_cache

import numpy as np

from hotnas.benchmarks import Benchmark, Evaluation, register_benchmark
from hotnas.cells import Cell, Network
from hotnas.operations import Operation
from hotnas.spaces import register_space
from hotnas.spaces.base import SearchSpace

__all__ = ["GNNSpace", "OPS", "OPERATIONS", "OPERATION_COSTS", "QUALITY", "synthetic_value", "synthetic_table",
           "index_of", "SyntheticGNNBenchmark"]

OPS: tuple[str, ...] = ("gcn", "gat", "sage", "gin", "cheb", "arma", "k-gnn", "fc", "skip")
N_NODES = 4

OPERATIONS: dict[str, Operation] = {
    "gcn": Operation("spectral", weight=1.0, family_cost=0.3),
    "cheb": Operation("spectral", weight=1.5, family_cost=0.3),
    "arma": Operation("spectral", weight=1.5, family_cost=0.3),
    "sage": Operation("spatial", weight=1.0, family_cost=0.3),
    "gin": Operation("spatial", weight=1.25, family_cost=0.3),
    "k-gnn": Operation("spatial", weight=1.25, family_cost=0.3),
    "gat": Operation("attention", weight=1.5),
    "fc": Operation("linear", weight=0.5),
    "skip": Operation("skip", weight=0.0, params=False, passthrough=True),
}
OPERATION_COSTS: dict[tuple[str, str], float] = {("gcn", "gat"): 0.5}

#: per-operation quality q of the synthetic formula.
QUALITY: dict[str, float] = {"gcn": 3.0, "gat": 3.5, "sage": 3.2, "gin": 3.4, "cheb": 2.8, "arma": 2.6,
                             "k-gnn": 3.0, "fc": 1.0, "skip": 0.5}


def _parse(arch: str) -> tuple[tuple[str, int], ...]:
    if not isinstance(arch, str):
        raise ValueError(f"a gnn4 architecture is a string like 'gcn<0|gat<1|sage<0|skip<2', got {arch!r}")
    parts = arch.strip().split("|")
    if len(parts) != N_NODES:
        raise ValueError(f"gnn4 architecture {arch!r}: expected {N_NODES} nodes 'op<input' separated by '|', "
                         f"got {len(parts)}")
    out = []
    for i, part in enumerate(parts, start=1):
        op, sep, src = part.strip().partition("<")
        if not sep or op not in OPS:
            raise ValueError(f"gnn4 architecture {arch!r}: node {i} {part!r} must be 'op<input' with op in {OPS}")
        if not src.isdigit() or not 0 <= int(src) < i:
            raise ValueError(f"gnn4 architecture {arch!r}: node {i} reads node {src!r}; expected 0..{i - 1}")
        out.append((op, int(src)))
    return tuple(out)


def _write(nodes: tuple[tuple[str, int], ...]) -> str:
    return "|".join(f"{op}<{src}" for op, src in nodes)


class GNNSpace(SearchSpace):
    """Four GNN operation nodes, each reading one earlier node (module docstring)."""

    name = "gnn4"
    operations = OPERATIONS
    operation_costs = OPERATION_COSTS

    def canonical(self, arch: str) -> str:
        return _write(_parse(arch))

    def sample(self, rng: np.random.Generator) -> str:
        return _write(tuple((OPS[int(rng.integers(len(OPS)))], int(rng.integers(i))) for i in range(1, N_NODES + 1)))

    def mutations(self, arch: str) -> list[str]:
        nodes = list(_parse(arch))
        out = []
        for k, (op, src) in enumerate(nodes):
            for o in OPS:
                if o != op:
                    out.append(_write(tuple(nodes[:k] + [(o, src)] + nodes[k + 1:])))
            for s in range(k + 1):
                if s != src:
                    out.append(_write(tuple(nodes[:k] + [(op, s)] + nodes[k + 1:])))
        return out

    def to_network(self, arch: str) -> Network:
        return Network.from_cells([_cell(self.canonical(arch))])

    def encoding(self, arch: str) -> np.ndarray:
        """(8,) categorical symbols: each node's operation index and input index (for hamming)."""
        nodes = _parse(arch)
        return np.array([OPS.index(op) for op, _ in nodes] + [src for _, src in nodes])

    def categorical_encoding(self) -> tuple[tuple[str, tuple], ...]:
        """Categorical variables (for external peers such as Optuna): node i's operation and input."""
        return (tuple((f"op_{i}", OPS) for i in range(1, N_NODES + 1))
                + tuple((f"input_{i}", tuple(range(i))) for i in range(1, N_NODES + 1)))

    def decode(self, codes) -> str:
        """The architecture of a code vector (operation indices, then input indices: :meth:`encoding`)."""
        c = [int(x) for x in codes]
        if len(c) != 2 * N_NODES:
            raise ValueError(f"a gnn4 code vector has {2 * N_NODES} entries, got {codes!r}")
        return self.canonical(_write(tuple((OPS[c[i]], c[N_NODES + i]) for i in range(N_NODES))))

    def enumerate(self) -> Iterator[str]:
        inputs = itertools.product(*[range(i) for i in range(1, N_NODES + 1)])
        for srcs, ops in itertools.product(list(inputs), list(itertools.product(OPS, repeat=N_NODES))):
            yield _write(tuple(zip(ops, srcs)))

    def __len__(self) -> int:
        return int(np.prod(np.arange(1, N_NODES + 1))) * len(OPS) ** N_NODES


@lru_cache(maxsize=None)
def _cell(arch: str) -> Cell:
    nodes = _parse(arch)
    n = N_NODES + 2
    A = np.zeros((n, n), dtype=int)
    read = set()
    for i, (_op, src) in enumerate(nodes, start=1):
        A[src, i] = 1
        read.add(src)
    for i in range(1, N_NODES + 1):
        if i not in read:
            A[i, n - 1] = 1
    return Cell(A, ("input",) + tuple(op for op, _ in nodes) + ("output",))


_SIZE = 24 * len(OPS) ** N_NODES


@lru_cache(maxsize=1)
def _noise() -> np.ndarray:
    return np.random.default_rng(18).uniform(-1.0, 1.0, (2, _SIZE))


def index_of(arch: str) -> int:
    """Position of ``arch`` in ``GNNSpace().enumerate()`` (inputs outer, operations inner)."""
    nodes = _parse(arch)
    topo = 0
    for i, (_op, src) in enumerate(nodes, start=1):
        topo = topo * i + src
    ops = 0
    for op, _ in nodes:
        ops = ops * len(OPS) + OPS.index(op)
    return topo * len(OPS) ** N_NODES + ops


def _formula(q: np.ndarray, depth: np.ndarray, n_families: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised formula: q, depth (m, 4) per node, n_families (m,), noise (2, m)."""
    D = depth.max(axis=1)
    val = 60.0 + (q * 0.9 ** (depth - 1)).sum(axis=1) + 1.5 * n_families - 0.8 * (D - 2.5) ** 2 + 0.5 * noise[0]
    return val, val - 0.3 + 0.3 * noise[1]


def synthetic_value(arch: str) -> tuple[float, float]:
    """(validation, test) of the documented formula (module docstring)."""
    nodes = _parse(arch)
    depth = [0] * (N_NODES + 1)
    for i, (_op, src) in enumerate(nodes, start=1):
        depth[i] = depth[src] + 1
    q = np.array([[QUALITY[op] for op, _ in nodes]])
    fams = len({OPERATIONS[op].family for op, _ in nodes if op != "skip"})
    val, test = _formula(q, np.array([depth[1:]], dtype=float), np.array([fams]),
                         _noise()[:, index_of(arch)][:, None])
    return float(val[0]), float(test[0])


@lru_cache(maxsize=1)
def synthetic_table() -> tuple[np.ndarray, np.ndarray]:
    """(validation, test) of every architecture, in ``GNNSpace().enumerate()`` order (vectorised)."""
    srcs = np.array(list(itertools.product(*[range(i) for i in range(1, N_NODES + 1)])))  # (24, 4)
    depth = np.zeros((len(srcs), N_NODES + 1))
    for i in range(1, N_NODES + 1):
        depth[:, i] = depth[np.arange(len(srcs)), srcs[:, i - 1]] + 1
    opsi = np.array(list(itertools.product(range(len(OPS)), repeat=N_NODES)))  # (6561, 4)
    qual = np.array([QUALITY[o] for o in OPS])[opsi]
    fam_names = sorted({OPERATIONS[o].family for o in OPS if o != "skip"})
    fam_of = np.array([fam_names.index(OPERATIONS[o].family) if o != "skip" else -1 for o in OPS])
    fam = fam_of[opsi]
    n_fam = sum(((fam == f).any(axis=1)).astype(int) for f in range(len(fam_names)))
    T, O = len(srcs), len(opsi)
    q = np.broadcast_to(qual[None], (T, O, N_NODES)).reshape(-1, N_NODES)
    d = np.broadcast_to(depth[:, None, 1:], (T, O, N_NODES)).reshape(-1, N_NODES)
    nf = np.broadcast_to(n_fam[None], (T, O)).reshape(-1)
    return _formula(q, d, nf, _noise())


class SyntheticGNNBenchmark(Benchmark):
    """The synthetic table of :func:`synthetic_value` over :class:`GNNSpace` (validation = ``val``, in %)."""

    def __init__(self, name: str = "gnn4-synthetic") -> None:
        super().__init__()
        self.name = name
        self.space = GNNSpace()

    def _evaluate(self, arch: str) -> Evaluation:
        val, test = synthetic_value(arch)
        return Evaluation(arch, val, test, 1.0)

    @property
    def optimum(self) -> float:
        return _best()[1]

    def test_of_best(self) -> float:
        return synthetic_value(_best()[0])[1]


@lru_cache(maxsize=1)
def _best() -> tuple[str, float]:
    val, _ = synthetic_table()
    i = int(np.argmax(val))
    return next(itertools.islice(GNNSpace().enumerate(), i, None)), float(val[i])


register_space("gnn4", GNNSpace)
register_benchmark("gnn4-synthetic", SyntheticGNNBenchmark)
