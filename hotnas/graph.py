"""The architecture graph G over a search space and a distance: the sdot graph of gradient-flow NAS.

Nodes are architectures (canonical strings of a :class:`~hotnas.spaces.base.SearchSpace`); edges
and weights come from a distance d (HOTNN by default, any method of :mod:`hotnas.distances`) and a
kernel k [spec ``semi-discrete-flow.md`` section 2, ``hotnn-and-bo.md`` section 5]:

    w(g, g') = k(d(g, g'))                   for g' in N(g),  k = exp(-d / l) ("laplace")
                                                              or exp(-d^2 / (2 l^2)) ("rbf"),

with the neighbourhood N(g) one of

* ``"mutations"`` — the single-step mutation neighbours of the space (``space.mutations(g)``);
  symmetric whenever mutation is (it is for NB201: a single-edge change is undone by another).
* ``"knn"`` — the k nearest candidates by d, the candidates being an explicit finite ``pool`` or
  the mutation ball of radius ``radius`` around g, symmetrised by ``symmetrize="union"`` (g ~ g' iff
  either is among the other's k nearest) or ``"mutual"`` (iff both are).

**Lazy.** Nothing is built up front: a node's neighbour row (names and weights) is computed the
first time it is asked for and cached, so a space of any size works (NB201's 15,625 nodes, or
NB101's 423k) and only the rows a search visits are ever computed. :meth:`subgraph` exports a
finite induced subgraph as an :class:`sdot.SemiDiscreteSpace` (labels = architectures), which is
how the sdot solvers (jump steps, NASGD/NASAGD rules, birth-death) run on G.

Distances go through one engine (:class:`hotnas.distances.engine.PairwiseDistances`, cached by
canonical pair), or any callable ``pairs(archs_a, archs_b) -> (n,)`` of element-wise distances.

    >>> from hotnas.spaces.nb201 import NB201Space
    >>> space = NB201Space()
    >>> G = ArchitectureGraph(space, distance=lambda a, b: np.ones(len(a)), lengthscale=1.0)
    >>> names, w = G.neighbours(space.sample(np.random.default_rng(0)))
    >>> len(names), float(w[0].round(4))
    (24, 0.3679)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from sdot.space import SemiDiscreteSpace

from .kernels import Kernel, get_kernel
from .spaces.base import SearchSpace

__all__ = ["ArchitectureGraph", "NEIGHBOURHOODS", "SYMMETRIZATIONS"]

NEIGHBOURHOODS = ("mutations", "knn")
SYMMETRIZATIONS = ("union", "mutual")

PairsFn = Callable[[Sequence[str], Sequence[str]], np.ndarray]


class ArchitectureGraph:
    """Lazily built weighted graph G over a search space.

    Args:
        space: the search space (canonical strings, ``mutations``).
        distance: a :class:`~hotnas.distances.engine.PairwiseDistances` engine, a method name for
            one (``"hotnn"``, ``"hamming"``, ... built on first use with ``distance_options``), or a
            callable ``pairs(archs_a, archs_b) -> (n,)`` of element-wise distances.
        kernel: ``"laplace"`` | ``"rbf"`` (registry :mod:`hotnas.kernels`) or a callable
            ``k(d) -> w`` applied element-wise (then ``lengthscale`` is ignored).
        lengthscale: l of the kernel, in distance units (> 0); ``math.inf`` gives uniform weights w = 1 on
            the mutation graph without computing a distance (issue 19's ablation baseline).
        neighbours: ``"mutations"`` or ``"knn"`` (module docstring).
        k: neighbours kept per node in ``"knn"`` mode.
        pool: finite candidate set for ``"knn"`` (default: the mutation ball of ``radius``).
        radius: mutation steps of the candidate ball in ``"knn"`` mode without a pool (1 or 2).
        symmetrize: ``"union"`` | ``"mutual"`` for ``"knn"``.
        min_weight: floor on weights (> 0) so that an edge never vanishes numerically.
        distance_options: options for an engine built from a method name.

    Raises:
        ValueError: at construction, on an unknown neighbourhood/symmetrisation, a non-positive
            length-scale or ``k``, or ``knn`` without ``k``; at use, on a distance callable that returns
            the wrong shape or negative/non-finite values (naming the pair).
    """

    def __init__(self, space: SearchSpace, distance: Any = "hotnn", *, kernel: str | Kernel | Callable = "laplace",
                 lengthscale: float = 0.1, neighbours: str = "mutations", k: int | None = None,
                 pool: Iterable[str] | None = None, radius: int = 1, symmetrize: str = "union",
                 min_weight: float = 1e-12, distance_options: dict | None = None):
        if not isinstance(space, SearchSpace):
            raise TypeError(f"space must be a SearchSpace, got {type(space).__name__}")
        if neighbours not in NEIGHBOURHOODS:
            raise ValueError(f"neighbours must be one of {NEIGHBOURHOODS}, got {neighbours!r}")
        if symmetrize not in SYMMETRIZATIONS:
            raise ValueError(f"symmetrize must be one of {SYMMETRIZATIONS}, got {symmetrize!r}")
        if np.isnan(lengthscale) or lengthscale <= 0:
            raise ValueError(f"lengthscale must be a number > 0 (inf: uniform weights), got {lengthscale!r}")
        if np.isinf(lengthscale) and neighbours != "mutations":
            raise ValueError(f"lengthscale=inf (uniform weights) needs neighbours='mutations', got {neighbours!r}: "
                             "a k-nearest-neighbour graph is defined by its distances")
        if neighbours == "knn":
            if k is None or int(k) < 1:
                raise ValueError(f"neighbours='knn' needs k >= 1, got k={k!r}")
            if pool is None and radius not in (1, 2):
                raise ValueError(f"the knn candidate ball needs radius 1 or 2, got {radius!r}")
        if not (0 < min_weight < 1):
            raise ValueError(f"min_weight must lie in (0, 1), got {min_weight!r}")
        self.space = space
        self.neighbourhood = neighbours
        self.k = None if k is None else int(k)
        self.radius = int(radius)
        self.symmetrize = symmetrize
        self.min_weight = float(min_weight)
        self.lengthscale = float(lengthscale)
        self._pool = None if pool is None else list(dict.fromkeys(space.canonical(a) for a in pool))
        self._pool_set = None if self._pool is None else set(self._pool)
        if callable(kernel) and not isinstance(kernel, Kernel):
            self._kfun = kernel
            self.kernel_name = getattr(kernel, "__name__", "callable")
        else:
            kern = get_kernel(kernel)
            self._kfun = lambda d: kern(d, self.lengthscale)
            self.kernel_name = kern.name
        self._distance_spec = distance
        self._distance_options = dict(distance_options or {})
        self._pairs_fn: PairsFn | None = None
        self._rows: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
        self._knn_raw: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
        self._canon: dict[str, str] = {}
        self.stats = {"rows": 0, "distances": 0}
        if self._pool is None:  # neighbours come from space.mutations: check they are symmetric (once per space)
            from .spaces.base import asymmetry_message, checked_symmetry

            bad = checked_symmetry(space)
            if bad:
                import warnings

                warnings.warn(asymmetry_message(space, bad, 20) + "; the graph closes one-way edges symmetrically",
                              UserWarning, stacklevel=2)

    def canonical(self, arch: str) -> str:
        """``space.canonical(arch)``, cached (validation happens once per string)."""
        c = self._canon.get(arch)
        if c is None:
            c = self.space.canonical(arch)
            self._canon[arch] = c
            self._canon.setdefault(c, c)
        return c

    # ------------------------------------------------------------------ distances
    @property
    def engine(self) -> Any:
        """The distance engine (or callable) behind the weights, built on first use."""
        if self._pairs_fn is None:
            self._resolve_distance()
        return self._engine_obj

    def _resolve_distance(self) -> None:
        spec = self._distance_spec
        if isinstance(spec, str):
            from .distances.engine import PairwiseDistances

            spec = PairwiseDistances(self.space, method=spec, **self._distance_options)
        if hasattr(spec, "pairs"):
            self._engine_obj = spec
            self._pairs_fn = spec.pairs
        elif callable(spec):
            self._engine_obj = spec
            self._pairs_fn = spec
        else:
            raise TypeError("distance must be a PairwiseDistances engine, a method name or a callable "
                            f"pairs(archs_a, archs_b); got {type(spec).__name__}")

    def distances(self, archs_a: Sequence[str], archs_b: Sequence[str]) -> np.ndarray:
        """Element-wise distances d(a_i, b_i), validated (shape (n,), finite, >= 0)."""
        if self._pairs_fn is None:
            self._resolve_distance()
        a, b = list(archs_a), list(archs_b)
        if not a:
            return np.zeros(0)
        d = np.asarray(self._pairs_fn(a, b), dtype=float).reshape(-1)
        if d.shape != (len(a),):
            raise ValueError(f"the distance returned shape {d.shape} for {len(a)} pairs")
        bad = ~np.isfinite(d) | (d < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"distance d({a[i]!r}, {b[i]!r}) = {d[i]!r}; distances must be finite and >= 0")
        self.stats["distances"] += len(a)
        return d

    def _weights(self, d: np.ndarray) -> np.ndarray:
        w = np.asarray(self._kfun(d), dtype=float).reshape(d.shape)
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"kernel {self.kernel_name!r} returned non-finite or negative weights {w[:5]}")
        return np.maximum(w, self.min_weight)

    # ------------------------------------------------------------------ neighbourhoods
    def _candidates(self, arch: str) -> list[str]:
        if self._pool is not None:
            if arch not in self._pool_set:
                raise KeyError(f"{arch!r} is not in the graph's candidate pool")
            return [a for a in self._pool if a != arch]
        ball = dict.fromkeys(self.space.mutations(arch))
        if self.radius == 2:
            for m in list(ball):
                for m2 in self.space.mutations(m):
                    if m2 != arch:
                        ball.setdefault(m2, None)
        return list(ball)

    def _knn(self, arch: str) -> tuple[tuple[str, ...], np.ndarray]:
        """The k nearest candidates of ``arch`` and their distances (before symmetrisation)."""
        hit = self._knn_raw.get(arch)
        if hit is not None:
            return hit
        cand = self._candidates(arch)
        d = self.distances([arch] * len(cand), cand)
        order = np.lexsort((np.array(cand, dtype=object).astype(str), d))[: self.k]  # ties by name
        out = (tuple(cand[i] for i in order), d[order])
        self._knn_raw[arch] = out
        return out

    def _row(self, arch: str) -> tuple[tuple[str, ...], np.ndarray]:
        hit = self._rows.get(arch)
        if hit is not None:
            return hit
        if self.neighbourhood == "mutations":
            names = tuple(dict.fromkeys(m for m in self.space.mutations(arch) if m != arch))
            if np.isinf(self.lengthscale):  # uniform weights: w = 1 on every edge, no distance computed
                row = (names, np.ones(len(names)))
                self._rows[arch] = row
                self.stats["rows"] += 1
                return row
            d = self.distances([arch] * len(names), names)
        else:
            near, dnear = self._knn(arch)
            if self.symmetrize == "mutual":
                keep = [i for i, h in enumerate(near) if arch in self._knn(h)[0]]
                names, d = tuple(near[i] for i in keep), dnear[keep]
            else:
                extra = [h for h in self._candidates(arch) if h not in near and arch in self._knn(h)[0]]
                dextra = self.distances([arch] * len(extra), extra)
                names, d = near + tuple(extra), np.r_[dnear, dextra]
        row = (names, self._weights(d))
        self._rows[arch] = row
        self.stats["rows"] += 1
        return row

    def neighbours(self, arch: str) -> tuple[list[str], np.ndarray]:
        """Neighbours of ``arch`` (canonical strings) and their weights w(arch, .) > 0, shape (m,)."""
        arch = self.canonical(arch)
        names, w = self._row(arch)
        return list(names), w.copy()

    def degree(self, arch: str) -> float:
        """Weighted degree sum_{g'} w(arch, g')."""
        return float(self._row(self.canonical(arch))[1].sum())

    def weight(self, a: str, b: str) -> float:
        """w(a, b) (0 when b is not a neighbour of a)."""
        a, b = self.canonical(a), self.canonical(b)
        names, w = self._row(a)
        try:
            return float(w[names.index(b)])
        except ValueError:
            return 0.0

    def sample_neighbour(self, arch: str, rng: np.random.Generator, size: int | None = None) -> Any:
        """Neighbour(s) drawn with probability w(arch, g') / degree(arch) (the flow's proposal)."""
        if size is None:
            return self.propose(arch, rng)[0]
        names, w = self._row(self.canonical(arch))
        if not names:
            raise ValueError(f"{arch!r} has no neighbours in G")
        return [names[i] for i in rng.choice(len(names), size=size, p=w / w.sum())]

    def propose(self, arch: str, rng: np.random.Generator) -> tuple[str, float]:
        """One proposal of every flow: ``(g', deg(arch))`` with g' drawn with probability ``w(arch, g') / deg(arch)``
        (one ``rng.choice``); ValueError when ``arch`` has no neighbour (callers that skip such nodes check
        :meth:`degree` first)."""
        names, w = self._row(self.canonical(arch))
        if not names:
            raise ValueError(f"{arch!r} has no neighbours in G")
        deg = w.sum()
        return names[int(rng.choice(len(names), p=w / deg))], float(deg)

    # ------------------------------------------------------------------ export
    def subgraph(self, archs: Sequence[str], dim: int = 0) -> SemiDiscreteSpace:
        """The subgraph of G induced by ``archs`` as a :class:`sdot.SemiDiscreteSpace`.

        Node i is ``archs[i]`` (canonicalised, duplicates refused); the weight of an induced edge is
        w(g, g') of G (rows are computed for every node given, so exporting K nodes costs K rows).
        The result may be disconnected; sdot solvers that need connectivity check it themselves.
        """
        labels = [self.canonical(a) for a in archs]
        if len(set(labels)) != len(labels):
            raise ValueError("subgraph nodes must be distinct architectures")
        index = {a: i for i, a in enumerate(labels)}
        rows, cols, vals = [], [], []
        for i, a in enumerate(labels):
            names, w = self._row(a)
            for h, wh in zip(names, w):
                j = index.get(h)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
                    vals.append(wh)
        K = len(labels)
        W = sp.coo_matrix((vals, (rows, cols)), shape=(K, K)).tocsr()
        # each edge is listed from both ends; an asymmetric neighbourhood relation (a space whose
        # mutations are not undone by a mutation) or a distance not symmetric to the last bit is
        # closed symmetrically, keeping the larger weight
        W = W.maximum(W.T).tocsr()
        return SemiDiscreteSpace(W, dim=dim, labels=labels)

    def cached_rows(self) -> int:
        """How many neighbour rows have been computed so far."""
        return len(self._rows)

    def __repr__(self) -> str:
        return (f"ArchitectureGraph(space={self.space.name!r}, neighbours={self.neighbourhood!r}, "
                f"kernel={self.kernel_name!r}, lengthscale={self.lengthscale:g}, rows={len(self._rows)})")
