"""The HOTNAS optimiser's registration; the optimiser moved to :mod:`hotnas.bo.optimiser` (its pieces to
:mod:`hotnas.bo`, the distance cache to :mod:`hotnas.distances.cache`).

``"hotnas"`` is registered lazily (a ``"module:Class"`` entry, imported on first use), so that
:mod:`hotnas.bo.optimiser` can import :mod:`hotnas.optimisers.base` without an import cycle. The old names
stay importable from here: ``HotnasBO`` (loaded on first access), ``DistanceCache``, ``TRANSFORMS``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ..bo.transforms import TRANSFORMS
from ..distances.cache import DistanceCache
from .base import OPTIMISERS

__all__ = ["HotnasBO", "DistanceCache", "TRANSFORMS"]  # noqa: F822 (HotnasBO: module __getattr__)

OPTIMISERS.register("hotnas", "hotnas.bo.optimiser:HotnasBO")


def __getattr__(name: str) -> Any:
    if name in ("HotnasBO", "KG_OVER"):
        return getattr(import_module("hotnas.bo.optimiser"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
