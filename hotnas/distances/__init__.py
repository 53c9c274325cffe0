"""Distances between architectures behind one front door.

    >>> from hotnas.distances import distance
    >>> a = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    >>> b = "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    >>> round(distance(a, b, method="hotnn"), 4) > 0
    True

Methods (registry :data:`METHODS`, extend with :func:`register_method`):

* ``"hotnn"`` — network level, exact OT over cells with position and type terms (:mod:`.hotnn`);
  HOTNN-style hierarchical OT, reconstructed from the HOTNAS abstract and poster.
* ``"ifgw"`` — cell level, fused Gromov-Wasserstein on node features and information flow (:mod:`.ifgw`).
* ``"otmann"`` — NASBOT's OTMANN on the flattened layer graph (:mod:`.otmann`).
* ``"tw"`` — TW-NAS tree-Wasserstein on operation histograms and degree chains (:mod:`.tw`).
* ``"hamming"`` — normalised Hamming distance of the space's categorical encoding (:mod:`.hamming`).

Arguments may be architecture strings (of ``space``, a name or a SearchSpace; guessed from the
string when omitted), :class:`hotnas.cells.Network` or :class:`hotnas.cells.Cell` objects.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from ..cells import Cell, Network
from ..spaces.base import SearchSpace

__all__ = ["distance", "register_method", "METHODS", "guess_space", "resolve_space"]

#: name -> "module:function" (relative to this package) or a callable f(a, b, space=..., **options).
METHODS: dict[str, Any] = {
    "hotnn": ".hotnn:_front",
    "ifgw": ".ifgw:_front",
    "otmann": ".otmann:_front",
    "tw": ".tw:_front",
    "hamming": ".hamming:_front",
}


def register_method(name: str, fn: Callable[..., float]) -> None:
    """Register ``fn(a, b, space=None, **options) -> float`` under ``name``."""
    METHODS[name] = fn


def get_method(name: str) -> Callable[..., float]:
    try:
        entry = METHODS[name]
    except KeyError:
        raise ValueError(f"unknown distance method {name!r}; known: {sorted(METHODS)}") from None
    if isinstance(entry, str):
        mod, fn = entry.split(":")
        entry = getattr(import_module(mod, __name__), fn)
        METHODS[name] = entry
    return entry


def guess_space(arch: str) -> str:
    """Name of the space an architecture string belongs to, from its shape."""
    s = arch.strip()
    if s.startswith("|"):
        return "nb201"
    if s.startswith("[["):
        return "darts"
    if s.startswith("(") or s.startswith("["):
        return "nb101"
    raise ValueError(f"cannot tell the search space of {arch[:60]!r}; pass space=")


def resolve_space(space: str | SearchSpace | None, arch: Any = None) -> SearchSpace | None:
    from ..spaces import get_space

    if isinstance(space, SearchSpace):
        return space
    if space is None:
        if not isinstance(arch, str):
            return None
        space = guess_space(arch)
    return get_space(space)


def as_network(x: Any, space: SearchSpace | None) -> Network:
    if isinstance(x, Network):
        return x
    if isinstance(x, Cell):
        return Network.from_cells([x])
    if isinstance(x, str):
        if space is None:
            raise ValueError("an architecture string needs a search space")
        return space.to_network(x)
    raise TypeError(f"cannot compare a {type(x).__name__}; expected an architecture string, Network or Cell")


def distance(a: Any, b: Any, method: str = "hotnn", space: str | SearchSpace | None = None, **options: Any) -> float:
    """Distance between two architectures by ``method`` (see the module docstring for options)."""
    fn = get_method(method)
    sp = resolve_space(space, a if isinstance(a, str) else b)
    return float(fn(a, b, space=sp, **options))
