"""The synthetic architecture ladder of spec 7.2 (:class:`QuadraticLadder`) and :func:`steps_to_reach`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..space import SemiDiscreteSpace

__all__ = ["QuadraticLadder", "steps_to_reach"]


class QuadraticLadder:
    """Synthetic architecture ladder (spec 7.2): K "depths" on a path graph, node g owning weights
    x_g in R^d trained by gradient descent on ``f(x, g) = a_g |x - m_g|^2 / 2 + c_g``.

    ``energies(n)`` is ``E_g = f(x_g(n), g)`` after n gradient steps of rate ``lr`` (closed form:
    ``x_g(n) - m_g = (1 - lr a_g)^n (x_g(0) - m_g)``), so a NAS run that trains every node once per
    dynamics step sees ``energies(n)`` at step n.
    """

    def __init__(self, a: Any, c: Any, m: Any, x0: Any = None, lr: float = 0.1, weight: float = 1.0):
        self.a = np.asarray(a, dtype=float).ravel()
        self.c = np.asarray(c, dtype=float).ravel()
        K = self.a.size
        self.m = np.asarray(m, dtype=float).reshape(K, -1)
        self.x0 = np.zeros_like(self.m) if x0 is None else np.asarray(x0, dtype=float).reshape(self.m.shape)
        if self.c.size != K:
            raise ValueError(f"a has {K} entries but c has {self.c.size}")
        if np.any(self.a <= 0) or np.any(lr * self.a >= 2):
            raise ValueError("need a_g > 0 and lr * a_g < 2 for gradient descent to converge")
        self.lr = float(lr)
        self.space = SemiDiscreteSpace.path(K, weight=weight)

    @property
    def n_nodes(self) -> int:
        return self.a.size

    def weights(self, n: int) -> np.ndarray:
        """x_g after n gradient steps, shape (K, d)."""
        return self.m + ((1 - self.lr * self.a) ** n)[:, None] * (self.x0 - self.m)

    def energies(self, n: int) -> np.ndarray:
        """E_g = f(x_g(n), g), shape (K,)."""
        d = self.weights(n) - self.m
        return self.a * (d * d).sum(1) / 2 + self.c

    def energy_table(self, n_steps: int) -> np.ndarray:
        """energies(n) for n = 0..n_steps-1, shape (n_steps, K)."""
        return np.stack([self.energies(n) for n in range(n_steps)])

    @property
    def best_node(self) -> int:
        return int(np.argmin(self.c))

    @classmethod
    def slope(cls, K: int = 20, drop: float = 1.0, a: float = 1.0, spread: float = 1.0, lr: float = 0.1,
              d: int = 2) -> "QuadraticLadder":
        """Energies decreasing linearly along the path (c_g = drop (1 - g/(K-1))), weights starting
        at distance ``spread`` from their optimum (a training transient)."""
        c = drop * (1 - np.arange(K) / (K - 1))
        m = np.zeros((K, d))
        m[:, 0] = spread
        return cls(np.full(K, a), c, m, lr=lr)

    @classmethod
    def plateau(cls, K: int = 20, first_drop: float = 1.0, plateau_slope: float = 1e-3, last_drop: float = 1.0,
                a: float = 1.0, spread: float = 0.5, lr: float = 0.1, d: int = 2) -> "QuadraticLadder":
        """A long plateau: node 0 sits ``first_drop`` above node 1, nodes 1..K-2 fall by only
        ``plateau_slope`` per node, and the best node K-1 lies ``last_drop`` below node K-2."""
        c = np.empty(K)
        c[0] = 1.0 + first_drop
        c[1:K - 1] = 1.0 - plateau_slope * np.arange(K - 2)
        c[K - 1] = c[K - 2] - last_drop
        m = np.zeros((K, d))
        m[:, 0] = spread
        return cls(np.full(K, a), c, m, lr=lr)


def steps_to_reach(fractions: np.ndarray, node: int, level: float = 0.5) -> int | None:
    """First step n at which ``fractions[n, node] >= level`` (None when never); fractions (n_steps, K)."""
    arr = np.asarray(fractions)
    hit = np.flatnonzero(arr[:, node] >= level)
    return int(hit[0]) if hit.size else None
