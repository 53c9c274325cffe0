"""The pairwise distance engine: batched, cached by canonical hash, parallel, incrementally grown.

    >>> from hotnas.spaces import get_space
    >>> from hotnas.distances.engine import PairwiseDistances
    >>> space = get_space("nb201")
    >>> eng = PairwiseDistances(space, method="hotnn", n_jobs=1)
    >>> archs = [space.sample(np.random.default_rng(i)) for i in range(4)]
    >>> D = eng.matrix(archs)                   # (4, 4), symmetric, zero diagonal
    >>> d = eng.pairs(archs[:2], archs[2:])     # element-wise, (2,)
    >>> D2 = eng.grow(archs); D3 = eng.grow([space.sample(np.random.default_rng(9))])  # new rows only

How it works (spec 9.2-9.3):

* every architecture becomes a :class:`~hotnas.distances.hotnn.NetworkSummary` (per-cell
  canonical hashes, positions, types, masses) and each distinct cell's features (structural
  location, information flow Phi, masses) are computed once;
* methods registered with ``batched="hotnn"`` / ``"ifgw"`` (``hotnn``, ``ifgw``, or a plugin's
  variant, :func:`hotnas.distances.register_method`): the distinct **cell** pairs needed (by unordered hash pair) are solved in
  batches by :func:`hotnas.distances.ifgw.ifgw_pairs` — vectorised conditional gradient over many
  pairs at once, in ``n_jobs`` processes — and cached; the outer OT is then solved per network pair
  (skipped when both networks repeat one cell in the same frame: HOTNN = d_cell);
* every network distance is cached by its unordered canonical-hash pair, so asking again, or
  growing a matrix, only computes what is new;
* other methods (``otmann``, ``tw``, ``hamming``) are computed pair by pair (in processes when
  there are many) and cached by canonical-string pair.

Changing an option means a new engine (caches are per option setting).
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from itertools import chain
from typing import Any

import numpy as np

from ..spaces.base import SearchSpace
from .emd import using_compiled
from .features import CellFeatures
from .hotnn import HOTNNOptions, NetworkSummary, cell_key, outer_cost, summarise
from .ifgw import features_cached_many, ifgw_pairs

__all__ = ["PairwiseDistances"]


# state inherited by forked workers (set just before a pool is created)
_WORKER: dict[str, Any] = {}


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the duration (restored after).

    A large query allocates millions of small tuples and arrays, none in reference cycles; with the
    collector on, each allocation burst triggers full collections that walk every cached object
    (about a tenth of the CPU time on the NB201 graph).  Reference counting still frees everything.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _summarise_chunk(archs: list[str]) -> list[tuple[str, NetworkSummary | str, dict[str, CellFeatures]]]:
    """(arch, summary, features of its cells) per architecture; to keep what is pickled back small,
    a network already summarised in this chunk is sent as its hash and a cell's features only once."""
    space, fopts = _WORKER["space"], _WORKER["fopts"]
    out: list[tuple[str, NetworkSummary | str, dict[str, CellFeatures]]] = []
    nets: set[str] = set()
    cells: dict[str, Any] = {}
    new_cells: list[tuple[int, list[str]]] = []  # (row of out, hashes of the cells it brings)
    for a in archs:
        net = space.to_network(a)
        h = net.canonical_hash
        if h in nets:
            out.append((a, h, {}))
            continue
        nets.add(h)
        fresh = [c for c in net.unique_cells().items() if c[0] not in cells]
        cells.update(fresh)
        new_cells.append((len(out), [c for c, _ in fresh]))
        out.append((a, summarise(net), {}))
    # the features of all new cells at once (batched by graph), each sent with its first network
    feats = dict(zip(cells, features_cached_many(list(cells.values()), fopts)))
    for row, hashes in new_cells:
        out[row][2].update((c, feats[c]) for c in hashes)
    return out


def _cell_chunk(keys: list[tuple[str, str]]) -> np.ndarray:
    feats, opt = _WORKER["feats"], _WORKER["cell_opt"]
    return np.asarray(ifgw_pairs([feats[a] for a, _ in keys], [feats[b] for _, b in keys], opt))


def _generic_chunk(pairs: list[tuple[str, str]]) -> list[float]:
    from . import get_method

    fn, space, options = get_method(_WORKER["method"]), _WORKER["space"], _WORKER["options"]
    return [float(fn(a, b, space=space, **options)) for a, b in pairs]


def _split(items: list, n_chunks: int, min_size: int) -> list[list]:
    size = max(min_size, -(-len(items) // max(n_chunks, 1)))
    return [items[i : i + size] for i in range(0, len(items), size)]


class PairwiseDistances:
    """Distances among architectures of one space, with caches and incremental growth.

    Args:
        space: a SearchSpace (or its registry name).
        method: "hotnn" (default), "ifgw", "otmann", "tw", "hamming" or any registered method.
        n_jobs: worker processes for large batches (1 = in this process).
        min_parallel: fewest pairs for which processes are used.
        **options: the method's options (for hotnn: mu, tau, alpha, lambda_op, op_cost, flow, ...).

    Attributes:
        archs, D: the architectures and matrix maintained by :meth:`grow`.
        stats: counters — cell pairs solved, network pairs computed, seconds spent.
    """

    def __init__(
        self,
        space: SearchSpace | str,
        method: str = "hotnn",
        n_jobs: int = 1,
        min_parallel: int = 4000,
        **options: Any,
    ) -> None:
        from . import engine_plan, get_method, resolve_space

        sp = resolve_space(space)
        if sp is None:
            raise ValueError("PairwiseDistances needs a search space")
        self.space: SearchSpace = sp
        self.method = method
        get_method(method)  # validate the name early
        self.n_jobs = max(1, int(n_jobs))
        self.min_parallel = int(min_parallel)
        # the batched path is declared when the method is registered (register_method(..., batched=))
        self._batched, self.options = engine_plan(method, dict(options))
        if self._batched is not None:
            self._opt = HOTNNOptions.make(**self.options)
        self._summ: dict[str, NetworkSummary] = {}
        self._feats: dict[str, CellFeatures] = {}
        self._dcell: dict[tuple[str, str], float] = {}
        self._dnet: dict[tuple[str, str], float] = {}
        self._canon: dict[str, str] = {}
        self.archs: list[str] = []
        self.D = np.zeros((0, 0))
        self.stats = {"cell_pairs_solved": 0, "network_pairs": 0, "seconds": 0.0}

    # -- public API ---------------------------------------------------------------------------
    def pairs(self, archs_a: Sequence[str], archs_b: Sequence[str]) -> np.ndarray:
        """Element-wise distances d(archs_a[i], archs_b[i]) (e.g. the edges of a graph)."""
        if len(archs_a) != len(archs_b):
            raise ValueError(f"pairs needs equal lengths, got {len(archs_a)} and {len(archs_b)}")
        t0 = time.perf_counter()
        with _gc_paused():
            ca, cb = self._canonical(archs_a), self._canonical(archs_b)
            keys = self._ensure(list(zip(ca, cb)))
        self.stats["seconds"] += time.perf_counter() - t0
        return np.array([self._dnet[k] if k is not None else 0.0 for k in keys], dtype=float)

    def matrix(self, archs_a: Sequence[str], archs_b: Sequence[str] | None = None) -> np.ndarray:
        """(len(a), len(b)) distance matrix; symmetric with zero diagonal when ``archs_b`` is None."""
        t0 = time.perf_counter()
        ca = self._canonical(archs_a)
        cb = ca if archs_b is None else self._canonical(archs_b)
        if archs_b is None:
            iu = np.triu_indices(len(ca), 1)
            todo = [(ca[i], ca[j]) for i, j in zip(*iu)]
        else:
            todo = [(x, y) for x in ca for y in cb]
        with _gc_paused():
            keys = self._ensure(todo)
        vals = np.array([self._dnet[k] if k is not None else 0.0 for k in keys], dtype=float)
        if archs_b is None:
            D = np.zeros((len(ca), len(ca)))
            D[iu] = vals
            D = D + D.T
        else:
            D = vals.reshape(len(ca), len(cb))
        self.stats["seconds"] += time.perf_counter() - t0
        return D

    def grow(self, new_archs: Sequence[str]) -> np.ndarray:
        """Append architectures to :attr:`archs` and return the grown matrix; only new rows are computed.

        ``D = [[D_old, B], [B^T, D_new]]`` with B = matrix(old, new) and D_new = matrix(new).
        """
        new = list(new_archs)
        if not new:
            return self.D
        B = self.matrix(self.archs, new) if self.archs else np.zeros((0, len(new)))
        Dn = self.matrix(new)
        m = len(self.archs)
        D = np.zeros((m + len(new), m + len(new)))
        D[:m, :m] = self.D
        D[:m, m:] = B
        D[m:, :m] = B.T
        D[m:, m:] = Dn
        self.archs.extend(new)
        self.D = D
        return D

    def prepare(self, archs: Sequence[str]) -> None:
        """Precompute the network summaries and cell features of ``archs`` (parsing, pruning,
        canonical hashing, node features and information-flow costs), so that later calls only
        solve transport problems. Optional: every query prepares what it needs."""
        if self._batched is not None:
            with _gc_paused():
                self._prepare(self._canonical(list(archs)))

    def cell_distances(self) -> dict[tuple[str, str], float]:
        """The cell-level cache (unordered hash pair -> d_cell)."""
        return dict(self._dcell)

    # -- internals ----------------------------------------------------------------------------
    def _canonical(self, archs: Sequence[str]) -> list[str]:
        cache = self._canon
        canon = self.space.canonical
        for a in dict.fromkeys(archs).keys() - cache.keys():  # each new string once
            cache[a] = canon(a)
        return [cache[a] for a in archs]

    def _pool(self, **state: Any) -> ProcessPoolExecutor:
        _WORKER.clear()
        _WORKER.update(state)
        try:
            ctx = mp.get_context("fork")
        except ValueError:  # pragma: no cover - platforms without fork
            ctx = None
        return ProcessPoolExecutor(max_workers=self.n_jobs, mp_context=ctx)

    def _prepare(self, archs: list[str]) -> None:
        """Network summaries and cell features of architectures not seen before."""
        todo = [a for a in dict.fromkeys(archs) if a not in self._summ]
        if not todo:
            return
        fopts = self._opt.cell.features
        if self.n_jobs > 1 and len(todo) >= self.min_parallel:
            with self._pool(space=self.space, fopts=fopts) as ex:
                chunks = _split(todo, 4 * self.n_jobs, 500)
                results = [r for res in ex.map(_summarise_chunk, chunks) for r in res]
        else:
            _WORKER.update(space=self.space, fopts=fopts)
            results = _summarise_chunk(todo)
        by_hash: dict[str, NetworkSummary] = {}
        for a, s, feats in results:
            if isinstance(s, str):  # a network summarised earlier in the same chunk
                s = by_hash[s]
            else:
                by_hash[s.hash] = s
            self._summ[a] = s
            for h, f in feats.items():
                self._feats.setdefault(h, f)

    def _ensure(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str] | None]:
        """Compute missing distances of canonical-string pairs; return their cache keys."""
        if self._batched is None:
            return self._ensure_generic(pairs)
        names = list(dict.fromkeys(chain.from_iterable(pairs)))
        self._prepare(names)
        summ, dnet = self._summ, self._dnet
        # many pairs (a mutation graph): comprehensions over hashes, one summary per network hash
        by_hash = {summ[a].hash: summ[a] for a in names}
        hash_of = {a: summ[a].hash for a in names}
        keys: list[tuple[str, str] | None] = [
            None if x == y else ((x, y) if x <= y else (y, x))
            for x, y in ((hash_of[a], hash_of[b]) for a, b in pairs)
        ]
        missing: dict[tuple[str, str], tuple[NetworkSummary, NetworkSummary]] = {
            k: (by_hash[k[0]], by_hash[k[1]]) for k in dict.fromkeys(keys) if k is not None and k not in dnet
        }
        if not missing:
            return keys
        if self._batched == "ifgw":
            for sa, sb in missing.values():
                if len(set(sa.cell_hashes)) != 1 or len(set(sb.cell_hashes)) != 1:
                    raise ValueError(
                        "method 'ifgw' compares single cells; this space has several cell types (use 'hotnn')"
                    )
        need: set[tuple[str, str]] = set()
        dcell = self._dcell
        for sa, sb in missing.values():
            if sa.repeated and sb.repeated:  # one cell each (the common case): one cell pair
                h1, h2 = sa.cell_hashes[0], sb.cell_hashes[0]
                if h1 != h2:
                    k = (h1, h2) if h1 <= h2 else (h2, h1)
                    if k not in dcell:
                        need.add(k)
                continue
            for h1 in set(sa.cell_hashes):
                for h2 in set(sb.cell_hashes):
                    if h1 != h2:
                        k = cell_key(h1, h2)
                        if k not in dcell:
                            need.add(k)
        self._solve_cells(list(need))
        mu, tau = (0.0, 0.0) if self._batched == "ifgw" else (self._opt.mu, self._opt.tau)
        single = self._batched == "ifgw"
        for k, (sa, sb) in missing.items():
            if single or (sa.repeated and sb.repeated and sa.frame == sb.frame):
                # one cell repeated in the same frame: HOTNN = d_cell (see hotnn.outer_cost)
                h1, h2 = sa.cell_hashes[0], sb.cell_hashes[0]
                dnet[k] = 0.0 if h1 == h2 else dcell[(h1, h2) if h1 <= h2 else (h2, h1)]
            else:
                dnet[k] = outer_cost(sa, sb, dcell, mu, tau)
        self.stats["network_pairs"] += len(missing)
        return keys

    def _solve_cells(self, keys: list[tuple[str, str]]) -> None:
        if not keys:
            return
        feats, opt = self._feats, self._opt.cell
        # sort by problem shape so that each chunk holds few shape groups
        size = {h: f.n for h, f in feats.items()}
        keys.sort(key=lambda k: size[k[0]] * 4096 + size[k[1]])
        if self.n_jobs > 1 and len(keys) >= self.min_parallel:
            # the compiled LP loop loaded here, once, so that the forked workers inherit it
            using_compiled()
            # many chunks: their costs differ (keys are sorted by shape), so balance dynamically
            chunks = _split(keys, 16 * self.n_jobs, 1000)
            with self._pool(feats=feats, cell_opt=opt) as ex:
                vals = np.concatenate(list(ex.map(_cell_chunk, chunks)))
        else:
            _WORKER.update(feats=feats, cell_opt=opt)
            vals = _cell_chunk(keys)
        self._dcell.update(zip(keys, vals.tolist()))
        self.stats["cell_pairs_solved"] += len(keys)

    def _ensure_generic(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str] | None]:
        keys: list[tuple[str, str] | None] = []
        missing: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        for a, b in pairs:
            if a == b:
                keys.append(None)
                continue
            k = (a, b) if a <= b else (b, a)
            keys.append(k)
            if k not in self._dnet and k not in seen:
                seen.add(k)
                missing.append(k)
        if missing:
            state = dict(method=self.method, space=self.space, options=self.options)
            if self.n_jobs > 1 and len(missing) >= self.min_parallel // 4:
                with self._pool(**state) as ex:
                    vals = [v for res in ex.map(_generic_chunk, _split(missing, 4 * self.n_jobs, 100)) for v in res]
            else:
                _WORKER.update(state)
                vals = _generic_chunk(missing)
            self._dnet.update(zip(missing, vals))
            self.stats["network_pairs"] += len(missing)
        return keys
