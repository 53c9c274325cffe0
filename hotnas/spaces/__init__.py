"""Search spaces by name: ``get_space("nb201" | "nb101" | "darts")``.

Spaces are imported lazily so that importing :mod:`hotnas.spaces` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .base import SearchSpace

__all__ = ["SearchSpace", "get_space", "register_space", "SPACES"]

#: name -> "module:Class" (relative to this package) or a SearchSpace subclass.
SPACES: dict[str, Any] = {
    "nb201": ".nb201:NB201Space",
    "nb101": ".nb101:NB101Space",
    "darts": ".darts:DartsSpace",
}


def register_space(name: str, cls: type[SearchSpace]) -> None:
    """Add a search space class under ``name``."""
    SPACES[name] = cls


def get_space(name: str, **kwargs: Any) -> SearchSpace:
    """Instantiate the search space registered under ``name``."""
    try:
        entry = SPACES[name]
    except KeyError:
        raise ValueError(f"unknown search space {name!r}; known: {sorted(SPACES)}") from None
    if isinstance(entry, str):
        mod, cls_name = entry.split(":")
        entry = getattr(import_module(mod, __name__), cls_name)
    return entry(**kwargs)
