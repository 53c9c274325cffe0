"""Registering a named class: the one decorator behind ``register_kernel`` and ``register_acquisition``.

    @register_kernel("laplace")        # == register_named(KERNELS, "laplace")
    class LaplaceKernel(Kernel): ...

The class gets ``cls.name = name`` (what error messages and ``repr`` show) and is added to the
:class:`sdot.registry.Registry` with its rules (the same class again is a no-op; a different one under a
taken name raises).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sdot.registry import Registry

__all__ = ["register_named"]

C = TypeVar("C", bound=type)


def register_named(registry: Registry, name: str) -> Callable[[C], C]:
    """Class decorator: ``cls.name = name`` and ``registry.register(name, cls)``."""

    def deco(cls: C) -> C:
        cls.name = name
        registry.register(name, cls)
        return cls

    return deco
