"""Distances between architectures behind one front door.

    >>> from hotnas.distances import distance
    >>> a = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    >>> b = "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    >>> round(distance(a, b, method="hotnn"), 4) > 0
    True

Methods (registry :data:`METHODS`, extend with :func:`register_method`; a method declares there
whether the pairwise engine may compute it by a batched path, ``batched="hotnn" | "ifgw"``):

* ``"hotnn"`` — network level, exact OT over cells with position and type terms (:mod:`.hotnn`);
  HOTNN-style hierarchical OT, reconstructed from the HOTNAS abstract and poster.
* ``"ifgw"`` — cell level, fused Gromov-Wasserstein on node features and information flow (:mod:`.ifgw`).
* ``"otmann"`` — NASBOT's OTMANN on the flattened layer graph (:mod:`.otmann`).
* ``"tw"`` — TW-NAS tree-Wasserstein on operation histograms and degree chains (:mod:`.tw`).
* ``"hamming"`` — normalised Hamming distance of the space's categorical encoding (:mod:`.hamming`).

Arguments may be architecture strings (of ``space``, a registered name or a SearchSpace; guessed
from the string among the built-in spaces when omitted — the error then lists the registered spaces
that parse it), :class:`hotnas.cells.Network` or :class:`hotnas.cells.Cell` objects. Networks built
from strings are cached per space (an LRU of :data:`NETWORK_CACHE_SIZE` per space), so pair-by-pair
computations call ``space.to_network`` once per architecture, not twice per pair.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sdot.registry import Registry

from ..cells import Cell, Network
from ..spaces.base import SearchSpace

__all__ = ["distance", "register_method", "get_method", "batched_path", "engine_plan", "METHODS", "guess_space",
           "resolve_space", "as_network", "NETWORK_CACHE_SIZE"]

#: the engine's batched paths a method may declare at registration.
BATCHED_PATHS = ("hotnn", "ifgw")

#: name -> "module:function" (relative to this package) or a callable f(a, b, space=..., **options).
METHODS: Registry = Registry("distance", package=__name__, label="distance method",
                             hint="add one with hotnas.distances.register_method(name, fn)")
METHODS.register("hotnn", ".hotnn:_front", batched="hotnn")
METHODS.register("ifgw", ".ifgw:_front", batched="ifgw")
METHODS.register("otmann", ".otmann:_front")
METHODS.register("tw", ".tw:_front")
METHODS.register("hamming", ".hamming:_front")


def register_method(name: str, fn: Callable[..., float], *, batched: str | None = None,
                    defaults: dict[str, Any] | None = None, replace: bool = False) -> None:
    """Register ``fn(a, b, space=None, **options) -> float`` under ``name``.

    ``batched="hotnn"`` (or ``"ifgw"``) declares that ``fn`` computes that distance with the options
    ``defaults`` (merged under the caller's), so :class:`~hotnas.distances.engine.PairwiseDistances`
    computes it by its batched, cached path instead of pair by pair. The same function again is a
    no-op; another one under a taken name raises (``replace=True`` overrides).
    """
    if not callable(fn):
        raise TypeError(f"register_method({name!r}, ...) needs a callable f(a, b, space=None, **options), got {fn!r}")
    if batched is not None and batched not in BATCHED_PATHS:
        raise ValueError(f"batched must be None or one of {BATCHED_PATHS}, got {batched!r}")
    meta: dict[str, Any] = {}
    if batched is not None:
        meta["batched"] = batched
    if defaults:
        meta["defaults"] = dict(defaults)
    METHODS.register(name, fn, replace=replace, **meta)


def get_method(name: str) -> Callable[..., float]:
    """The registered function of a distance method (unknown names: ValueError with did-you-mean)."""
    return METHODS.load(name)


def batched_path(name: str) -> str | None:
    """The engine path ``name`` declared at registration ("hotnn", "ifgw") or None (pair by pair)."""
    return METHODS.meta(name).get("batched")


def engine_plan(name: str, options: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """``(batched path or None, options with the method's registered defaults merged under them)``."""
    meta = METHODS.meta(name)
    return meta.get("batched"), {**meta.get("defaults", {}), **options}


def guess_space(arch: str) -> str:
    """Name of the built-in space an architecture string belongs to, from its shape."""
    s = arch.strip()
    if s.startswith("|"):
        return "nb201"
    if s.startswith("[["):
        return "darts"
    if s.startswith("(") or s.startswith("["):
        return "nb101"
    raise ValueError(f"cannot tell the search space of {arch[:60]!r}; pass space=")


def resolve_space(space: str | SearchSpace | None, arch: Any = None) -> SearchSpace | None:
    """A SearchSpace from an instance, a registered name, or (None) the shape of ``arch``.

    Without a space, the built-in space guessed from the string's shape is used when it parses the
    string; otherwise the error names the registered spaces that do."""
    from ..spaces import SPACES, spaces_parsing

    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, str):
        return _named_space(space)
    if space is not None:
        raise TypeError(f"space must be a SearchSpace, a registered name or None, got {type(space).__name__}")
    if not isinstance(arch, str):
        return None
    try:
        sp = _named_space(guess_space(arch))
        sp.canonical(arch)
        return sp
    except ValueError:
        pass
    parse = spaces_parsing(arch)
    if parse:
        hint = f"registered spaces that parse it: {', '.join(parse)} (e.g. space={parse[0]!r})"
    else:
        hint = f"no registered space parses it (registered: {', '.join(SPACES.names())})"
    raise ValueError(f"cannot tell the search space of {arch[:60]!r}: pass space=NAME or a SearchSpace; {hint}")


_NAMED: dict[str, tuple[Any, SearchSpace]] = {}


def _named_space(name: str) -> SearchSpace:
    """One instance per registered name (so its network cache is reused across front-door calls);
    a re-registered class gets a new instance."""
    from ..spaces import SPACES, get_space

    cls = SPACES.load(name)
    hit = _NAMED.get(name)
    if hit is None or hit[0] is not cls:
        hit = _NAMED[name] = (cls, get_space(name))
    return hit[1]


#: networks kept per space by :func:`as_network` (least recently used dropped first).
NETWORK_CACHE_SIZE = 4096
_NETWORKS: "weakref.WeakKeyDictionary[SearchSpace, OrderedDict[str, Network]]" = weakref.WeakKeyDictionary()


def _network_of(space: SearchSpace, arch: str) -> Network:
    try:
        cache = _NETWORKS.get(space)
        if cache is None:
            cache = _NETWORKS[space] = OrderedDict()
    except TypeError:  # a space that cannot be weakly referenced or hashed: no cache
        return space.to_network(arch)
    net = cache.get(arch)
    if net is None:
        net = space.to_network(arch)
        cache[arch] = net
        if len(cache) > NETWORK_CACHE_SIZE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(arch)
    return net


def as_network(x: Any, space: SearchSpace | None) -> Network:
    """A Network from a Network, a Cell (one-cell network) or an architecture string of ``space`` (cached)."""
    if isinstance(x, Network):
        return x
    if isinstance(x, Cell):
        return Network.from_cells([x])
    if isinstance(x, str):
        if space is None:
            raise ValueError("an architecture string needs a search space")
        return _network_of(space, x)
    raise TypeError(f"cannot compare a {type(x).__name__}; expected an architecture string, Network or Cell")


def distance(a: Any, b: Any, method: str = "hotnn", space: str | SearchSpace | None = None, **options: Any) -> float:
    """Distance between two architectures by ``method`` (see the module docstring for options)."""
    fn = get_method(method)
    sp = resolve_space(space, a if isinstance(a, str) else b)
    return float(fn(a, b, space=sp, **options))
