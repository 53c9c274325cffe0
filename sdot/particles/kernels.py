"""Fast numpy kernels for the shipped :class:`~sdot.potentials.QuadraticPotential` (values and gradients).

``f(x, g) = a_g |x - m_g|^2 / 2 + c_g`` evaluated on coordinate columns into workspace buffers; every other
potential (and torch tensors) goes through the potential's own ``__call__`` / ``grad``.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from ..potentials import Potential, QuadraticPotential
from .workspace import WS

__all__ = ["QuadraticKernel", "columns", "gradient"]

_KERNELS: "weakref.WeakKeyDictionary[QuadraticPotential, tuple]" = weakref.WeakKeyDictionary()


class QuadraticKernel:
    """``f(x, h) = a_h |x - m_h|^2 / 2 + c_h`` and its gradient with 1-D ``np.take`` gathers and
    in-place arithmetic on coordinate columns (the generic ``QuadraticPotential.__call__`` gathers
    whole rows and reduces along a short axis, about five times slower at N = 10^6). Used only for
    numpy arrays and the exact class ``QuadraticPotential`` (subclasses take the generic path);
    computes in the dtype of the positions."""

    def __init__(self, pot: QuadraticPotential, dtype: Any):
        self.half_a = (pot.a / 2).astype(dtype)
        self.a = pot.a.astype(dtype)
        self.c = pot.c.astype(dtype)
        self.m = np.ascontiguousarray(pot.m, dtype=dtype)
        self.m_cols = [np.ascontiguousarray(pot.m[:, k], dtype=dtype) for k in range(pot.dim)]
        self.dtype = np.dtype(dtype)

    @staticmethod
    def get(potential: Any, x: Any) -> "QuadraticKernel | None":
        if type(potential) is not QuadraticPotential or not isinstance(x, np.ndarray):
            return None
        key = (x.dtype.str, potential.a.tobytes(), potential.c.tobytes(), potential.m.tobytes())
        cached = _KERNELS.get(potential)
        if cached is not None and cached[0] == key:  # parameters unchanged since it was built
            return cached[1]
        kern = QuadraticKernel(potential, x.dtype)
        _KERNELS[potential] = (key, kern)
        return kern

    def values(self, cols: list, h: np.ndarray, out: np.ndarray) -> np.ndarray:
        if not cols:
            return np.take(self.c, h, out=out)
        tmp = WS.get("ktmp", h.shape[0], self.dtype)
        for k, col in enumerate(cols):
            if k == 0:
                np.take(self.m_cols[0], h, out=out)
                np.subtract(col, out, out=out)
                np.multiply(out, out, out=out)
            else:
                np.take(self.m_cols[k], h, out=tmp)
                np.subtract(col, tmp, out=tmp)
                np.multiply(tmp, tmp, out=tmp)
                out += tmp
        out *= np.take(self.half_a, h, out=tmp)
        out += np.take(self.c, h, out=tmp)
        return out

    def grad(self, x: np.ndarray, g: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out = a_g (x - m_g), shape (N, d)."""
        np.take(self.m, g, axis=0, out=out)
        np.subtract(x, out, out=out)
        out *= np.take(self.a, g, out=WS.get("ktmp", g.shape[0], self.dtype))[:, None]
        return out


def columns(x: np.ndarray) -> list:
    """Contiguous coordinate columns of x (one transposed copy into the workspace)."""
    xt = WS.get("xt", (x.shape[1], x.shape[0]), x.dtype)
    np.copyto(xt, x.T)
    return [xt[k] for k in range(xt.shape[0])]


def gradient(potential: Potential, x: Any, g: Any, name: str = "grad") -> Any:
    """grad_x f(x, g); a workspace buffer on the fast path, else the potential's own array."""
    kern = QuadraticKernel.get(potential, x)
    if kern is not None:
        return kern.grad(x, g, WS.get(name, x.shape, x.dtype))
    grad = potential.grad(x, g)
    if tuple(grad.shape) != tuple(x.shape):
        raise ValueError(f"potential.grad returned shape {tuple(grad.shape)}, expected {tuple(x.shape)}")
    return grad
