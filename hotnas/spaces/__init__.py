"""Search spaces by name: ``get_space("nb201" | "nb101" | "darts" | a registered plugin space)``.

Spaces are imported lazily so that importing :mod:`hotnas.spaces` stays cheap. A plugin registers
its class with :func:`register_space`; its mutations are checked for symmetry on a sample then
(a :class:`~hotnas.spaces.base.MutationAsymmetry` error lists one-way pairs). The space contract
(required and optional methods, which optimiser and distance uses each) is in
:mod:`hotnas.spaces.base` and ``docs/extending.md``; ``check_space(space)`` reports what works.
"""

from __future__ import annotations

import inspect
from typing import Any

from sdot.registry import Registry

from .base import MutationAsymmetry, SearchSpace, asymmetry_message, check_mutation_symmetry, check_space

__all__ = ["SearchSpace", "get_space", "register_space", "SPACES", "check_space", "check_mutation_symmetry",
           "MutationAsymmetry", "spaces_parsing"]

#: name -> "module:Class" (relative to this package) or a SearchSpace subclass.
SPACES: Registry = Registry("space", package=__name__, label="search space",
                            hint="add one with hotnas.spaces.register_space(name, MySpace) (docs/extending.md)")
SPACES.register("nb201", ".nb201:NB201Space")
SPACES.register("nb101", ".nb101:NB101Space")
SPACES.register("darts", ".darts:DartsSpace")


def _check_on_register(name: str, cls: Any) -> None:
    if not (inspect.isclass(cls) and issubclass(cls, SearchSpace)):
        raise TypeError(f"register_space({name!r}, ...) needs a SearchSpace subclass, got {cls!r}")
    try:
        space = cls()
    except TypeError:
        return  # needs constructor arguments: checked when a graph is built on an instance
    bad = check_mutation_symmetry(space, n=20, seed=0)
    if bad:
        raise MutationAsymmetry(asymmetry_message(space, bad, 20) + f" (register_space({name!r}) refused it; "
                                "pass check=False to register it anyway)")


def register_space(name: str, cls: type[SearchSpace], *, check: bool = True, replace: bool = False) -> type[SearchSpace]:
    """Add a search space class under ``name``.

    With ``check`` (default) a class constructible without arguments has its mutations checked for
    symmetry on 20 samples (seed 0); one-way pairs raise :class:`MutationAsymmetry`. Registering the
    same class again is a no-op; another class under a taken name raises (``replace=True`` overrides).
    """
    if check:
        _check_on_register(name, cls)
    SPACES.register(name, cls, replace=replace)
    return cls


def get_space(name: str, **kwargs: Any) -> SearchSpace:
    """Instantiate the search space registered under ``name``."""
    return SPACES.load(name)(**kwargs)


def spaces_parsing(arch: str) -> list[str]:
    """Names of the registered spaces (constructible without arguments) whose ``canonical`` accepts ``arch``."""
    out = []
    for name in SPACES.names():
        try:
            SPACES.load(name)().canonical(arch)
        except Exception:  # noqa: BLE001 - any refusal means "not this space"
            continue
        out.append(name)
    return out
