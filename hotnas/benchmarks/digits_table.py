"""``digits-nb201``: a ground-truth table of NB201 cells trained from scratch on sklearn digits.

Every NB201 cell is deduplicated by its computational graph — the space's canonical hash of the
pruned operations-on-nodes cell (:meth:`hotnas.spaces.nb201.NB201Space.cell_hash`: isomorphic cells,
and strings that differ only on edges pruned away, share one entry): **8,765** distinct cells for the
15,625 strings. (NAS-Bench-201's own figure of 6,466 "unique" cells comes from its string form
``to_unique_str(consider_zero=True)``, which also contracts skip connections into their inputs; that
form merges some cells that are *not* the same network, e.g. ``node3 = 2 conv(x)`` through one shared
convolution and ``node3 = conv(x) + conv'(x)`` through two, so the table keeps the exact graph hash.)

Each cell is trained by one fixed protocol (:data:`PROTOCOL`): its first string in official index
order, the skeleton :class:`hotnas.supernet.NetConfig` ``(channels=8, n_cells=2, reduce_after=(0,))``,
Adam (lr 0.05, cosine to 0), minibatches of 64, 4 epochs of the 1,077-image training split, from
seeds ``arch_seed(s, representative)`` for s = 0, 1, 2 (:func:`hotnas.supernet.train_many`, many cells
per vectorised pass); validation and test accuracy (%) on the whole 360-image splits of
``load_digits_splits(0)``.

The table ships as ``hotnas/data/digits_nb201.json.gz`` and is regenerated (resumably, in parallel)
by ``python -m experiments.studies.build_digits_table``. A second table, ``digits_nb201_e8.json.gz``
(``get_benchmark("digits-nb201", epochs=8)``, ``--epochs 8`` to build it), trains the same cells by the
same protocol for 8 epochs: its seed noise is a third of the 4-epoch table's (median seed std 0.095 of
the spread between cells on the {none, skip, 3x3} sub-space, against 0.27), so it separates methods
better; it covers the {none, skip, 1x1, 3x3} sub-space (4,096 strings; partial beyond it). A build that
has not finished yet ships as a **partial** table: :attr:`DigitsTable.complete` is False,
:attr:`DigitsTable.n_done` cells are present, a benchmark over strings it does not cover is refused up
front naming the sub-spaces it does cover (``partial=True`` accepts it for inspection), and a query of a
cell not yet trained raises a ``KeyError`` naming it (no value is ever made up). Cells are built in a
fixed order — first the 261 cells of the operations ``SUBSPACES[0]`` (none, skip, 3x3; 729 strings), then
the rest of ``SUBSPACES[1]`` (adding 1x1; 1,948 cells), then all others in a seeded random order — so a
partial table covers whole sub-spaces first.

    >>> bench = get_benchmark("digits-nb201")                          # doctest: +SKIP
    >>> bench.query("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..spaces.nb201 import OPS, NB201Space, arch_string, parse_arch
from ..supernet import arch_seed
from .base import Benchmark, Evaluation

__all__ = ["PROTOCOL", "SUBSPACES", "FORMAT", "DigitsTable", "DigitsTableBenchmark", "NB201SubSpace",
           "unique_cells", "build_order", "load_digits_table", "table_file", "protocol", "shipped_epochs"]

FORMAT = "digits-nb201/1"

#: The one training protocol of every table entry.
PROTOCOL: dict[str, Any] = {
    "channels": 8, "n_cells": 2, "reduce_after": [0], "epochs": 4, "lr": 0.05, "batch_size": 64,
    "cosine": True, "optimizer": "adam", "data_seed": 0, "seeds": [0, 1, 2],
    "seed_rule": "arch_seed(s, representative)", "representative": "first string of the cell in official order",
}

#: Sub-spaces built first, in this order (operation subsets).
SUBSPACES: tuple[tuple[str, ...], ...] = (
    ("none", "skip_connect", "nor_conv_3x3"),
    ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3"),
)

#: Seed of the random order of the remaining cells.
ORDER_SEED = 2024


def protocol(epochs: int | None = None) -> dict[str, Any]:
    """:data:`PROTOCOL` with ``epochs`` training epochs instead of its 4 (a table of another length); a copy."""
    if epochs is None:
        return dict(PROTOCOL)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    return {**PROTOCOL, "epochs": int(epochs)}


def table_file(epochs: int | None = None) -> Path:
    """Path of the shipped table of the ``epochs``-epoch protocol (default: :data:`PROTOCOL`'s 4 epochs,
    ``digits_nb201.json.gz``; another length ``digits_nb201_e<epochs>.json.gz``)."""
    data = Path(__file__).resolve().parent.parent / "data"
    e = protocol(epochs)["epochs"]
    return data / ("digits_nb201.json.gz" if e == PROTOCOL["epochs"] else f"digits_nb201_e{e}.json.gz")


def shipped_epochs() -> list[int]:
    """Protocol lengths (epochs) with a table in the package."""
    data = table_file().parent
    out = [PROTOCOL["epochs"]] if table_file().is_file() else []
    for p in data.glob("digits_nb201_e*.json.gz"):
        tail = p.name[len("digits_nb201_e"):-len(".json.gz")]
        if tail.isdigit():
            out.append(int(tail))
    return sorted(out)


@lru_cache(maxsize=1)
def unique_cells() -> tuple[np.ndarray, tuple[int, ...]]:
    """``(cell_of_index, representatives)``: cell id (int, (15625,)) of every string in official index
    order, and the official index of each cell's representative (its first string); cell ids number
    the cells by their first appearance in official order."""
    space = NB201Space()
    ids: dict[str, int] = {}
    cell_of = np.empty(len(space), dtype=np.int64)
    reps: list[int] = []
    for i, a in enumerate(space.enumerate()):
        h = space.cell_hash(a)
        if h not in ids:
            ids[h] = len(reps)
            reps.append(i)
        cell_of[i] = ids[h]
    cell_of.setflags(write=False)
    return cell_of, tuple(reps)


def _cells_of_ops(ops: Sequence[str]) -> set[int]:
    space = NB201Space()
    cell_of, _ = unique_cells()
    return {int(cell_of[space.index(arch_string(c))]) for c in itertools.product(ops, repeat=6)}


@lru_cache(maxsize=1)
def build_order() -> tuple[int, ...]:
    """Cell ids in build order: the cells of ``SUBSPACES[0]``, then the new ones of ``SUBSPACES[1]``
    (each group by cell id), then every other cell in a random order seeded by :data:`ORDER_SEED`."""
    _, reps = unique_cells()
    seen: set[int] = set()
    order: list[int] = []
    for ops in SUBSPACES:
        new = sorted(_cells_of_ops(ops) - seen)
        order += new
        seen.update(new)
    rest = np.array(sorted(set(range(len(reps))) - seen))
    order += [int(c) for c in np.random.default_rng(ORDER_SEED).permutation(rest)]
    return tuple(order)


class NB201SubSpace(NB201Space):
    """NB201 restricted to the operations ``ops`` (every edge takes one of them): len(ops)^6 strings.

    ``sample``, ``mutations``, ``enumerate`` and ``__len__`` stay inside the sub-space; ``canonical``
    refuses a string with another operation (ValueError naming it). Distances and networks are NB201's.
    """

    def __init__(self, ops: Sequence[str]) -> None:
        ops = tuple(ops)
        bad = [o for o in ops if o not in OPS]
        if bad or len(set(ops)) != len(ops) or len(ops) < 2:
            raise ValueError(f"ops must be >= 2 distinct NB201 operations {OPS}, got {ops!r}")
        self.ops = tuple(o for o in OPS if o in ops)
        self.name = "nb201[" + ",".join(self.ops) + "]"

    def canonical(self, arch: str) -> str:
        arch = super().canonical(arch)
        bad = [o for o in parse_arch(arch) if o not in self.ops]
        if bad:
            raise ValueError(f"architecture {arch!r} uses {bad[0]!r}, outside the sub-space {self.ops}")
        return arch

    def sample(self, rng: np.random.Generator) -> str:
        return arch_string([self.ops[i] for i in rng.integers(len(self.ops), size=6)])

    def mutations(self, arch: str) -> list[str]:
        return [m for m in super().mutations(arch) if all(o in self.ops for o in parse_arch(m))]

    def enumerate(self) -> Iterator[str]:
        return (a for a in super().enumerate() if all(o in self.ops for o in parse_arch(a)))

    def __len__(self) -> int:
        return len(self.ops) ** 6


@dataclass(frozen=True)
class DigitsTable:
    """The table: per cell id, validation and test accuracy (%) of each seed (NaN where not trained).

    ``val``, ``test``: (n_cells, n_seeds) float arrays; ``cell_of_index`` (15625,); ``reps``: official
    index of each cell's representative; ``protocol``; ``build_seconds``: summed wall seconds of the
    shards' training.
    """

    val: np.ndarray
    test: np.ndarray
    cell_of_index: np.ndarray
    reps: tuple[int, ...]
    protocol: dict[str, Any]
    build_seconds: float

    @property
    def done(self) -> np.ndarray:
        return np.isfinite(self.val).all(axis=1)

    @property
    def n_done(self) -> int:
        return int(self.done.sum())

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    def cell(self, arch: str) -> int:
        return int(self.cell_of_index[NB201Space().index(arch)])

    def covers(self, space: NB201Space) -> bool:
        """Whether every string of ``space`` has a trained entry."""
        done = self.done
        return all(done[self.cell(a)] for a in space.enumerate())

    def to_json(self) -> dict[str, Any]:
        def rows(a: np.ndarray) -> list:
            return [None if not np.isfinite(r).all() else [round(float(x), 4) for x in r] for r in a]

        return {"format": FORMAT, "protocol": self.protocol, "complete": self.complete,
                "n_cells": int(len(self.reps)), "n_done": self.n_done, "build_seconds": round(self.build_seconds, 1),
                "cell_of_index": self.cell_of_index.tolist(), "reps": list(self.reps),
                "val": rows(self.val), "test": rows(self.test)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "DigitsTable":
        if d.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} table (format {d.get('format')!r})")
        n_seeds = len(d["protocol"]["seeds"])

        def arr(rows: list) -> np.ndarray:
            return np.array([[math.nan] * n_seeds if r is None else r for r in rows], dtype=float)

        return cls(arr(d["val"]), arr(d["test"]), np.array(d["cell_of_index"], dtype=np.int64),
                   tuple(int(r) for r in d["reps"]), dict(d["protocol"]), float(d.get("build_seconds", 0.0)))

    def save(self, path: str | os.PathLike) -> None:
        """Write the table (gzip JSON) atomically."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=9) as fh:
            json.dump(self.to_json(), fh, separators=(",", ":"))
        os.replace(tmp, path)


@lru_cache(maxsize=4)
def _load(path: str) -> DigitsTable:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"digits-nb201 table not found: {p} (build it: python -m experiments.build_digits_table)")
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="utf-8") as fh:
        return DigitsTable.from_json(json.load(fh))


def load_digits_table(path: str | os.PathLike | None = None, epochs: int | None = None) -> DigitsTable:
    """The shipped table of the ``epochs``-epoch protocol (default 4), or a user's copy at ``path``; cached per path."""
    if path is None:
        f = table_file(epochs)
        if not f.is_file():
            raise ValueError(f"no digits-nb201 table of {protocol(epochs)['epochs']} epochs ships with the package "
                             f"(shipped: {shipped_epochs()} epochs); build one with "
                             "python -m experiments.studies.build_digits_table --epochs E")
        return _load(str(f))
    return _load(str(Path(path)))


class DigitsTableBenchmark(Benchmark):
    """``digits-nb201``: look-ups in :class:`DigitsTable` at the cost of one training (``epochs`` of the protocol).

    Args:
        query: what a query returns as its value — ``"seed"`` (default): the validation accuracy of
            *one* of the table's trainings, seed index ``arch_seed(seed, arch) % n_seeds`` (the noise
            of one real from-scratch training, replayed); ``"mean"``: the mean over seeds.
        seed: base seed of the ``"seed"`` mode.
        ops: restrict the search space to these operations (:class:`NB201SubSpace`); default all.
        epochs: the training protocol's length, choosing the shipped table (:func:`shipped_epochs`):
            4 (default, :data:`PROTOCOL`) or 8 (seed noise about a third; partial: it covers the
            {none, skip, 1x1, 3x3} sub-space, see the README); a query costs this many epochs.
        path: a user's copy of the table (its own protocol; ``epochs`` must then be left out or match).
        partial: accept a partial table for a space it does not cover (an unfinished build, inspected):
            a query of a cell not trained yet raises ``KeyError``, and :attr:`optimum` is over the cells
            trained. Without it such a benchmark is refused up front, naming the sub-spaces it covers.

    ``value`` = validation %, ``test`` = the cell's mean test % (report only), ``cost`` = protocol epochs.
    :meth:`table_val` is the noise-free mean validation of a cell, :attr:`optimum` its maximum over
    the space, :meth:`regret` ``optimum - table_val(arch)``.
    """

    name = "digits-nb201"

    def __init__(self, query: str = "seed", seed: int = 0, ops: Sequence[str] | None = None,
                 path: str | os.PathLike | None = None, epochs: int | None = None, partial: bool = False) -> None:
        super().__init__()
        if query not in ("seed", "mean"):
            raise ValueError(f"query must be 'seed' or 'mean', got {query!r}")
        self.table = load_digits_table(path, epochs)
        if epochs is not None and int(self.table.protocol["epochs"]) != protocol(epochs)["epochs"]:
            raise ValueError(f"epochs={epochs!r} but the table at {path} was trained for "
                             f"{self.table.protocol['epochs']} epochs")
        self.mode, self.seed = query, int(seed)
        self.space = NB201Space() if ops is None else NB201SubSpace(ops)
        self.epochs = int(self.table.protocol["epochs"])
        self._mean_val = self.table.val.mean(axis=1)
        self._mean_test = self.table.test.mean(axis=1)
        if not partial and not self.table.complete and (ops is None or not self.table.covers(self.space)):
            # refused up front: a run over strings the table cannot answer would stop at its first missing cell
            covered = [list(o) for o in SUBSPACES if self.table.covers(NB201SubSpace(o))]
            what = "the whole space" if ops is None else f"the sub-space {self.space.ops}"
            if covered:
                has = f"it covers ops={covered[-1]}" + (f" (and the smaller {covered[:-1]})" if len(covered) > 1 else "")
                has += " — pass ops= one of them, "
            else:
                has = f"it covers none of the sub-spaces {[list(o) for o in SUBSPACES]} yet — "
            raise ValueError(f"the table is partial ({self.table.n_done} of {len(self.table.reps)} cells) and does "
                             f"not cover {what}; {has}complete it with python -m experiments.studies.build_digits_table "
                             f"--epochs {self.table.protocol['epochs']}, or pass partial=True to query the cells it "
                             f"has (a missing one raises KeyError)")

    def _cell(self, arch: str) -> int:
        c = self.table.cell(arch)
        if not np.isfinite(self._mean_val[c]):
            raise KeyError(f"cell of {arch!r} is not in the table yet (partial build: {self.table.n_done} of "
                           f"{len(self.table.reps)} cells; complete it with python -m experiments.studies.build_digits_table)")
        return c

    def table_val(self, arch: str) -> float:
        """Mean validation accuracy (%) of ``arch``'s cell over the table's seeds."""
        return float(self._mean_val[self._cell(self.space.canonical(arch))])

    def table_test(self, arch: str) -> float:
        return float(self._mean_test[self._cell(self.space.canonical(arch))])

    def _evaluate(self, arch: str) -> Evaluation:
        c = self._cell(arch)
        if self.mode == "mean":
            v = float(self._mean_val[c])
        else:
            v = float(self.table.val[c, arch_seed(self.seed, arch) % self.table.val.shape[1]])
        return Evaluation(arch=arch, value=v, test=float(self._mean_test[c]), cost=float(self.epochs))

    @cached_property
    def optimum(self) -> float:
        """Best mean validation accuracy over the search space (over trained cells); computed once (a
        sub-space is enumerated to find its cells)."""
        if isinstance(self.space, NB201SubSpace):
            cells = sorted({self.table.cell(a) for a in self.space.enumerate()})
            return float(np.max(self._mean_val[cells]))
        return float(np.nanmax(self._mean_val))

    def regret(self, arch: str) -> float:
        """``optimum - table_val(arch)`` (percentage points)."""
        return self.optimum - self.table_val(arch)
