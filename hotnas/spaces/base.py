"""The search-space contract, in one place, and ``check_space(space)`` to see what works with a space.

Architectures travel through the library as **canonical strings** (hashable, JSON-able, equal
for isomorphic cells), so optimisers, caches, checkpoints and logs never hold live objects.

Required (abstract) methods and who uses them:

========================  ==========================================================================
``canonical(arch)``       everything: validation at the edge, caches, tables (``TabularBenchmark``)
``sample(rng)``           every optimiser (initial designs, random search, BO's random candidates)
``mutations(arch)``       evolution, BO candidate pools, the flow's graph G (must be symmetric:
                          b in mutations(a) iff a in mutations(b); checked on a sample)
``to_network(arch)``      the cell distances ``hotnn``, ``ifgw``, ``otmann``, ``tw`` (and the engine)
========================  ==========================================================================

Optional:

========================  ==========================================================================
``encoding(arch)``        the ``hamming`` distance (a fixed-length array of categorical symbols)
``enumerate()``           random search and the flow once a finite space is nearly exhausted;
``__len__()``             the flow's and random search's "space exhausted" test, the flow's
                          initial population on tiny spaces (without them: treated as infinite)
``mutate(arch, rng)``     evolution (default: a uniform choice among ``mutations(arch)``)
``operations``            class attribute ``{label: hotnas.operations.Operation}``: the declared
                          features of the space's own operations (type, cost between operations,
                          compute weight) read by ``hotnn``/``ifgw``, ``otmann`` and ``tw``;
                          ``operation_costs = {(a, b): cost}`` optional pair costs. Labels nobody
                          declared get documented defaults and one ``UserWarning``.
========================  ==========================================================================

:func:`check_space` runs each method on a few samples and reports what works (and what does not,
with the reason); :func:`check_mutation_symmetry` lists one-way mutation pairs.
"""

from __future__ import annotations

import inspect
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..operations import Operation, declare_operations

if TYPE_CHECKING:  # pragma: no cover
    from ..cells import Network

__all__ = ["SearchSpace", "check_space", "check_mutation_symmetry", "SpaceReport", "MutationAsymmetry"]


class MutationAsymmetry(ValueError):
    """A space whose mutations are not symmetric (the architecture graph G assumes they are)."""


class SearchSpace(ABC):
    """A set of architectures with a canonical string form and single-step mutations (module docstring)."""

    name: str = "space"
    #: declared features of the space's own operation labels (see :mod:`hotnas.operations`).
    operations: Mapping[str, Operation] | None = None
    #: optional declared costs between pairs of operation labels, in [0, 1].
    operation_costs: Mapping[tuple[str, str], float] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        ops = cls.__dict__.get("operations")
        costs = cls.__dict__.get("operation_costs")
        if ops or costs:
            declare_operations(ops or {}, costs, owner=f"search space {cls.__qualname__}")

    @abstractmethod
    def canonical(self, arch: str) -> str:
        """Validate ``arch`` (raising ValueError naming the bad part) and return its canonical form."""

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> str:
        """A uniformly random architecture (canonical string)."""

    @abstractmethod
    def mutations(self, arch: str) -> list[str]:
        """All single-step mutation neighbours of ``arch`` (canonical, distinct, excluding arch).

        Must be symmetric: ``b in mutations(a)`` iff ``a in mutations(b)``."""

    @abstractmethod
    def to_network(self, arch: str) -> "Network":
        """The cell-based network of ``arch`` (what distances compare)."""

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """One uniformly chosen single-step mutation of ``arch``."""
        nbrs = self.mutations(arch)
        return nbrs[int(rng.integers(len(nbrs)))]

    def enumerate(self) -> Iterator[str]:
        """Every architecture, when the space is small enough; otherwise NotImplementedError."""
        raise NotImplementedError(f"search space {self.name!r} cannot be enumerated")

    def __len__(self) -> int:
        raise TypeError(f"search space {self.name!r} has no finite size known")


def check_mutation_symmetry(space: SearchSpace, n: int = 20, seed: int = 0, limit: int = 5,
                            per_sample: int | None = 6) -> list[tuple[str, str]]:
    """One-way mutation pairs (a, b): b in mutations(a) but a not in mutations(b), on a sample.

    ``n`` architectures are sampled (seed ``seed``) and ``per_sample`` of each one's mutations
    (all when None) are checked: ``n (1 + per_sample)`` calls of ``mutations``. Returns at most
    ``limit`` pairs (empty: no asymmetry found on the sample)."""
    rng = np.random.default_rng(seed)
    bad: list[tuple[str, str]] = []
    for _ in range(int(n)):
        a = space.canonical(space.sample(rng))
        nbrs = list(space.mutations(a))
        if per_sample is not None and len(nbrs) > per_sample:
            nbrs = [nbrs[int(i)] for i in np.sort(rng.choice(len(nbrs), per_sample, replace=False))]
        for b in nbrs:
            if a not in space.mutations(b):
                bad.append((a, b))
                if len(bad) >= limit:
                    return bad
    return bad


def asymmetry_message(space: SearchSpace, bad: list[tuple[str, str]], n: int) -> str:
    pairs = "; ".join(f"{a!r} -> {b!r}" for a, b in bad[:3])
    return (f"search space {getattr(space, 'name', type(space).__name__)!r}: mutations are not symmetric "
            f"(found {len(bad)}{'+' if len(bad) >= 5 else ''} one-way pairs in {n} samples, e.g. {pairs}: the "
            f"second is a mutation of the first but not the reverse). The architecture graph G of the flow "
            f"assumes b in mutations(a) iff a in mutations(b); mutate every representation of a (not only "
            f"its canonical form) and canonicalise the results")


_SYMMETRY_CHECKED: "weakref.WeakKeyDictionary[SearchSpace, list[tuple[str, str]]]" = weakref.WeakKeyDictionary()


def checked_symmetry(space: SearchSpace, n: int = 20) -> list[tuple[str, str]]:
    """:func:`check_mutation_symmetry` once per space instance (cached); a space whose ``sample`` or
    ``mutations`` are not implemented has nothing to check (empty list)."""
    try:
        return _SYMMETRY_CHECKED[space]
    except (KeyError, TypeError):
        pass
    try:
        bad = check_mutation_symmetry(space, n=n)
    except (NotImplementedError, TypeError, ValueError, AttributeError):
        bad = []
    try:
        _SYMMETRY_CHECKED[space] = bad
    except TypeError:
        pass
    return bad


@dataclass
class SpaceReport:
    """What :func:`check_space` found: ``ok`` items, ``problems`` (fatal) and ``notes`` (optional parts)."""

    name: str
    ok: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        lines = [f"search space {self.name!r}: " + ("all required methods work" if self.passed else "PROBLEMS")]
        lines += [f"  ok       {s}" for s in self.ok]
        lines += [f"  problem  {s}" for s in self.problems]
        lines += [f"  note     {s}" for s in self.notes]
        return "\n".join(lines)


def check_space(space: SearchSpace | type, n: int = 10, seed: int = 0, distances: bool = True) -> SpaceReport:
    """Run every method of the space contract on ``n`` samples and say what works.

    Checks: ``sample`` gives canonical strings that ``canonical`` keeps fixed; ``mutations`` are
    canonical, distinct, exclude the architecture and are symmetric; ``to_network`` builds a network;
    the optional ``encoding`` (fixed length), ``enumerate``/``__len__`` (agree) and declared
    ``operations`` (every label ``to_network`` emits is declared); with ``distances`` the distances
    that apply give finite, symmetric values that are 0 on identical architectures.
    Returns a :class:`SpaceReport`; print it.
    """
    import warnings

    if inspect.isclass(space):
        space = space()
    if not isinstance(space, SearchSpace):
        raise TypeError(f"check_space needs a SearchSpace, got {type(space).__name__}")
    rep = SpaceReport(getattr(space, "name", type(space).__name__))
    rng = np.random.default_rng(seed)
    try:
        archs = [space.sample(rng) for _ in range(n)]
        bad = [a for a in archs if space.canonical(a) != a]
        if bad:
            rep.problems.append(f"sample/canonical: sample() returned non-canonical strings, e.g. {bad[0]!r}")
        else:
            rep.ok.append(f"sample/canonical: {n} samples, all canonical")
    except Exception as exc:  # noqa: BLE001 - report, do not stop
        rep.problems.append(f"sample/canonical: {type(exc).__name__}: {exc}")
        return rep
    try:
        degs = []
        for a in archs:
            m = space.mutations(a)
            degs.append(len(m))
            if a in m or len(set(m)) != len(m) or any(space.canonical(b) != b for b in m):
                rep.problems.append(f"mutations({a!r}): must be canonical, distinct and exclude the architecture")
                break
        asym = check_mutation_symmetry(space, n=n, seed=seed)
        if asym:
            rep.problems.append("mutations: " + asymmetry_message(space, asym, n))
        else:
            rep.ok.append(f"mutations: symmetric on {n} samples (mean degree {np.mean(degs):.1f}) -> "
                          f"evolution, BO candidate pools, the flow's graph")
    except Exception as exc:  # noqa: BLE001
        rep.problems.append(f"mutations: {type(exc).__name__}: {exc}")
    labels: set[str] = set()
    try:
        for a in archs:
            net = space.to_network(a)
            labels.update(o for ci in net.cells for o in ci.cell.ops)
        rep.ok.append("to_network -> hotnn, ifgw, otmann, tw")
    except Exception as exc:  # noqa: BLE001
        rep.problems.append(f"to_network: {type(exc).__name__}: {exc} (hotnn, ifgw, otmann, tw unavailable)")
    if labels:
        from ..cells import is_io_label
        from ..operations import OPERATIONS

        undeclared = sorted(o for o in labels if not is_io_label(o) and o not in OPERATIONS)
        if undeclared:
            rep.notes.append(f"operations {undeclared} are not declared: the distances use documented defaults "
                             f"(cost 1, weight 0.5) and warn; declare `operations = {{...}}` on the space")
        else:
            rep.ok.append(f"operations: all {len(labels)} labels seen have declared features")
    if hasattr(space, "encoding"):
        try:
            shapes = {np.asarray(space.encoding(a)).shape for a in archs}
            if len(shapes) != 1:
                rep.problems.append(f"encoding: lengths differ between architectures {sorted(shapes)}")
            else:
                rep.ok.append(f"encoding: fixed shape {shapes.pop()} -> hamming")
        except Exception as exc:  # noqa: BLE001
            rep.problems.append(f"encoding: {type(exc).__name__}: {exc}")
    else:
        rep.notes.append("no encoding(): the hamming distance is unavailable")
    try:
        size = len(space)
        first = list(space.enumerate())
        if len(first) != size:
            rep.problems.append(f"enumerate() gave {len(first)} architectures but len(space) = {size}")
        else:
            rep.ok.append(f"enumerate/__len__: {size} architectures -> random search and the flow know when "
                          f"the space is exhausted")
    except (TypeError, NotImplementedError):
        rep.notes.append("no enumerate()/__len__: treated as an infinite space (fine for large spaces)")
    except Exception as exc:  # noqa: BLE001
        rep.problems.append(f"enumerate/__len__: {type(exc).__name__}: {exc}")
    if distances and len(archs) >= 2:
        from ..distances import METHODS, distance

        for method in sorted(METHODS):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    d1 = distance(archs[0], archs[1], method=method, space=space)
                    d2 = distance(archs[1], archs[0], method=method, space=space)
                    d0 = distance(archs[0], archs[0], method=method, space=space)
                if not (np.isfinite(d1) and d1 >= 0 and abs(d1 - d2) <= 1e-9 * max(1.0, d1) and d0 == 0):
                    rep.problems.append(f"distance {method!r}: d(a,b)={d1}, d(b,a)={d2}, d(a,a)={d0}")
                else:
                    rep.ok.append(f"distance {method!r}: finite, symmetric, 0 on identical architectures")
            except Exception as exc:  # noqa: BLE001
                rep.notes.append(f"distance {method!r} unavailable: {type(exc).__name__}: {exc}")
    return rep


def parse_literal(arch: Any, what: str, expected: str) -> Any:
    """``arch`` itself, or the Python literal the string ``arch`` spells; ValueError ``"<what> '...' is not
    <expected>: <reason>"`` when it spells none."""
    if not isinstance(arch, str):
        return arch
    import ast

    try:
        return ast.literal_eval(arch.strip())
    except (ValueError, SyntaxError) as e:
        raise ValueError(f"{what} {arch[:80]!r} is not {expected}: {e}") from None
