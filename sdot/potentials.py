"""Potentials f(x, g) on R^d x G, vectorised over a batch of points.

A potential maps positions ``x`` of shape (N, d) and node indices ``g`` of shape (N,) to values
of shape (N,); ``grad(x, g)`` returns grad_x f of shape (N, d); ``all_nodes(x)`` returns f(x, g)
for every node, shape (N, K). numpy arrays and torch tensors are both accepted (same path).

Shipped analytic potentials (for tests and studies, spec ``semi-discrete-flow.md`` section 8):

* :class:`QuadraticPotential` ``f(x, g) = a_g |x - m_g|^2 / 2 + c_g``
* :class:`DoubleWellPotential` ``f(x, g) = a_g (x_1^2 - s_g^2)^2 / 4 + b_g x_1 + |x_{2:}|^2 / 2 + c_g``
* :class:`CallablePotential` wraps any user function; gradients by torch autograd when not given.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .backend import asarray_like, is_torch, namespace, to_numpy

__all__ = ["Potential", "QuadraticPotential", "DoubleWellPotential", "CallablePotential", "check_points"]


def check_points(x: Any, g: Any, dim: int, n_nodes: int) -> None:
    """Validate shapes and node range at the edge; raise ValueError naming the problem."""
    if tuple(x.shape[1:]) != (dim,) or x.ndim != 2:
        raise ValueError(f"x must have shape (N, {dim}), got {tuple(x.shape)}")
    if g.ndim != 1 or g.shape[0] != x.shape[0]:
        raise ValueError(f"g must have shape ({x.shape[0]},), got {tuple(g.shape)}")
    if g.shape[0]:
        gmin, gmax = int(g.min()), int(g.max())
        if gmin < 0 or gmax >= n_nodes:
            raise ValueError(f"node index {gmin if gmin < 0 else gmax} out of range [0, {n_nodes})")


class Potential:
    """Base class. Subclasses set ``n_nodes``, ``dim`` and implement ``__call__`` and ``grad``."""

    n_nodes: int
    dim: int

    def __call__(self, x: Any, g: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def grad(self, x: Any, g: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def all_nodes(self, x: Any) -> Any:
        """f(x, g) for every node g: shape (N, K). A loop over nodes (K is small), never particles."""
        xp = namespace(x)
        N = x.shape[0]
        cols = []
        for k in range(self.n_nodes):
            g = xp.full((N,), k, dtype=xp.int64) if xp is np else xp.full((N,), k, dtype=xp.int64, device=x.device)
            cols.append(self(x, g))
        return xp.stack(cols, axis=1) if xp is np else xp.stack(cols, dim=1)


class QuadraticPotential(Potential):
    """f(x, g) = a_g |x - m_g|^2 / 2 + c_g, grad = a_g (x - m_g).

    Parameters
    ----------
    a : array_like, shape (K,)  curvatures (> 0 for a confining potential)
    c : array_like, shape (K,)  offsets (node energies)
    m : array_like, shape (K, d), optional  centres (default 0); d = 0 gives f = c_g
    """

    def __init__(self, a: Any, c: Any, m: Any = None, dim: int | None = None):
        self.a = np.asarray(a, dtype=float).ravel()
        self.c = np.asarray(c, dtype=float).ravel()
        K = self.a.size
        if self.c.size != K:
            raise ValueError(f"a has {K} entries but c has {self.c.size}")
        if m is None:
            self.m = np.zeros((K, 0 if dim is None else dim))
        else:
            self.m = np.asarray(m, dtype=float).reshape(K, -1)
        if dim is not None and self.m.shape[1] != dim:
            raise ValueError(f"m has dimension {self.m.shape[1]} but dim = {dim}")
        for name, v in (("a", self.a), ("c", self.c), ("m", self.m)):
            if not np.all(np.isfinite(v)):
                raise ValueError(f"potential parameter {name} has non-finite entries: {v}")
        self.n_nodes, self.dim = K, self.m.shape[1]

    def __call__(self, x, g):
        xp = namespace(x)
        a, c, m = asarray_like(self.a, x), asarray_like(self.c, x), asarray_like(self.m, x)
        d = x - m[g]
        return a[g] * (d * d).sum(**_ax(xp, 1)) / 2 + c[g]

    def grad(self, x, g):
        a, m = asarray_like(self.a, x), asarray_like(self.m, x)
        return a[g][:, None] * (x - m[g])

    def all_nodes(self, x):
        xp = namespace(x)
        a, c, m = asarray_like(self.a, x), asarray_like(self.c, x), asarray_like(self.m, x)
        # |x - m_k|^2 = |x|^2 - 2 x.m_k + |m_k|^2 : one matrix product instead of K passes
        sq = (x * x).sum(**_ax(xp, 1))[:, None] - 2 * x @ m.T + (m * m).sum(**_ax(xp, 1))[None, :]
        return a[None, :] * sq / 2 + c[None, :]


class DoubleWellPotential(Potential):
    """f(x, g) = a_g (x_1^2 - s_g^2)^2 / 4 + b_g x_1 + |x_{2:}|^2 / 2 + c_g  (d >= 1).

    Wells at x_1 = +-s_g, tilted by b_g; the other coordinates see a unit quadratic.
    """

    def __init__(self, a: Any, s: Any, b: Any, c: Any, dim: int = 1):
        self.a, self.s, self.b, self.c = (np.asarray(v, dtype=float).ravel() for v in (a, s, b, c))
        K = self.a.size
        if not (self.s.size == self.b.size == self.c.size == K):
            raise ValueError("a, s, b, c must all have K entries")
        if dim < 1:
            raise ValueError(f"a double well needs dim >= 1, got {dim}")
        self.n_nodes, self.dim = K, int(dim)

    def __call__(self, x, g):
        xp = namespace(x)
        a, s, b, c = (asarray_like(v, x)[g] for v in (self.a, self.s, self.b, self.c))
        x1 = x[:, 0]
        rest = (x[:, 1:] ** 2).sum(**_ax(xp, 1)) / 2
        return a * (x1**2 - s**2) ** 2 / 4 + b * x1 + rest + c

    def grad(self, x, g):
        a, s, b = (asarray_like(v, x)[g] for v in (self.a, self.s, self.b))
        out = x * 1.0
        out[:, 0] = a * (x[:, 0] ** 2 - s**2) * x[:, 0] + b
        return out


class CallablePotential(Potential):
    """A user function ``f(x, g) -> (N,)`` with an optional ``grad(x, g) -> (N, d)``.

    Without ``grad``, gradients come from torch autograd (the function must then accept tensors).
    """

    def __init__(self, f: Callable[[Any, Any], Any], n_nodes: int, dim: int,
                 grad: Callable[[Any, Any], Any] | None = None):
        self._f, self._grad = f, grad
        self.n_nodes, self.dim = int(n_nodes), int(dim)

    def __call__(self, x, g):
        return self._f(x, g)

    def grad(self, x, g):
        if self._grad is not None:
            return self._grad(x, g)
        import torch

        was_numpy = not is_torch(x)
        xt = torch.as_tensor(np.asarray(x) if was_numpy else x.detach(), dtype=torch.float64
                             if was_numpy else x.dtype).requires_grad_(True)
        gt = torch.as_tensor(np.asarray(g)) if was_numpy else g
        (gx,) = torch.autograd.grad(self._f(xt, gt).sum(), xt)
        return to_numpy(gx) if was_numpy else gx


def _ax(xp, axis):
    return {"axis": axis} if xp is np else {"dim": axis}
