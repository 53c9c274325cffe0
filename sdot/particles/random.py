"""Random draws of the particle steps, one code path for numpy and torch.

A numpy state carries a ``numpy.random.Generator``, a torch state a ``torch.Generator`` on its device.
The steps draw only through :func:`normal`, :func:`uniform` and :func:`integers`, called through this
module (``draws.uniform(...)``), so a test can replay one stream into both backends by patching here.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from ..backend import is_torch

__all__ = ["make_rng", "copy_rng", "normal", "uniform", "integers"]


def make_rng(rng: Any, x: Any):
    """The stream for particles ``x``: a generator passed through (checked), or one made from a seed."""
    if is_torch(x):
        torch = sys.modules["torch"]
        if isinstance(rng, torch.Generator):
            if rng.device.type != x.device.type:
                raise ValueError(f"torch.Generator on {rng.device} but particles on {x.device}")
            return rng
        if isinstance(rng, np.random.Generator):
            seed = int(rng.integers(2**63 - 1))
        elif rng is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1)
        elif isinstance(rng, (int, np.integer)):
            seed = int(rng)
        else:
            raise TypeError(f"rng for torch particles must be a seed or torch.Generator, got {type(rng).__name__}")
        gen = torch.Generator(device=x.device)
        gen.manual_seed(seed)
        return gen
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(rng, torch.Generator):
        raise TypeError("a torch.Generator was given for numpy particles; pass a numpy Generator or a seed")
    return np.random.default_rng(rng)


def copy_rng(rng):
    """An independent generator in the same state (numpy or torch)."""
    if isinstance(rng, np.random.Generator):
        bg = type(rng.bit_generator)()
        bg.state = rng.bit_generator.state
        return np.random.Generator(bg)
    torch = sys.modules["torch"]
    gen = torch.Generator(device=rng.device)
    gen.set_state(rng.get_state())
    return gen


def normal(state: Any, shape: tuple) -> Any:
    """Standard normal draws of ``shape`` in the dtype and on the device of ``state.x``."""
    x = state.x
    if is_torch(x):
        return sys.modules["torch"].randn(shape, generator=state.rng, dtype=x.dtype, device=x.device)
    return state.rng.standard_normal(shape, dtype=x.dtype)


def uniform(state: Any, n: int) -> Any:
    """``n`` uniforms on [0, 1) in float64."""
    x = state.x
    if is_torch(x):
        torch = sys.modules["torch"]
        return torch.rand((n,), generator=state.rng, dtype=torch.float64, device=x.device)
    return state.rng.random(n)


def integers(state: Any, high: int, n: int) -> Any:
    """``n`` integers uniform on [0, high)."""
    x = state.x
    if is_torch(x):
        return sys.modules["torch"].randint(0, high, (n,), generator=state.rng, device=x.device)
    return state.rng.integers(0, high, n)
