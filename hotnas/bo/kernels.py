"""Stationary kernels on precomputed distances, and the projection of a Gram matrix onto the PSD cone.

A kernel here is a *correlation* function of a distance, ``r(D; l)`` with ``r(0) = 1``; the GP multiplies
it by the signal variance. Registered forms [spec hotnn-and-bo.md, Section 5]:

    laplace : r = exp(-D / l)
    rbf     : r = exp(-D^2 / (2 l^2))

Neither is guaranteed positive semi-definite for a general optimal-transport distance (``exp(-t W)`` is
PD for every ``t`` only when ``W`` is conditionally negative definite, as for tree-Wasserstein), hence
:func:`project_psd`, the remedy of NASBOT (``gp_core.py``): clip the eigenvalues at zero.

    >>> import numpy as np
    >>> D = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> get_kernel("laplace")(D, lengthscale=1.0)[0, 1].round(4)
    np.float64(0.3679)
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from sdot.registry import Registry

from .registration import register_named

__all__ = ["Kernel", "LaplaceKernel", "RBFKernel", "KERNELS", "register_kernel", "get_kernel",
           "project_psd", "min_eigenvalue"]


class Kernel(ABC):
    """A correlation function of a distance, ``r(D; l)``, with its derivative in ``log l``."""

    name: str = "kernel"

    @abstractmethod
    def __call__(self, D: np.ndarray, lengthscale: float) -> np.ndarray:
        """Correlations ``r(D; l)``, same shape as ``D`` (any shape, distances >= 0)."""

    @abstractmethod
    def grad_log_lengthscale(self, D: np.ndarray, lengthscale: float, R: np.ndarray | None = None) -> np.ndarray:
        """``d r / d log l`` element-wise; ``R`` is ``r(D; l)`` when already computed."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


#: name -> Kernel class (one :class:`sdot.registry.Registry`: duplicates refused, did-you-mean errors).
KERNELS: Registry = Registry("kernel", hint="add one with @hotnas.bo.register_kernel(name)")


def register_kernel(name: str):
    """Class decorator adding a kernel to the registry under ``name`` (same class again: no-op)."""
    return register_named(KERNELS, name)


def get_kernel(kernel: str | Kernel) -> Kernel:
    """A kernel instance by registered name (or the instance itself)."""
    if isinstance(kernel, Kernel):
        return kernel
    return KERNELS.load(kernel)()


@register_kernel("laplace")
class LaplaceKernel(Kernel):
    """``r = exp(-D / l)``; ``d r / d log l = r * D / l``."""

    def __call__(self, D, lengthscale):
        return np.exp(-np.asarray(D, dtype=float) / lengthscale)

    def grad_log_lengthscale(self, D, lengthscale, R=None):
        R = self(D, lengthscale) if R is None else R
        return R * (np.asarray(D, dtype=float) / lengthscale)


@register_kernel("rbf")
class RBFKernel(Kernel):
    """``r = exp(-D^2 / (2 l^2))``; ``d r / d log l = r * D^2 / l^2``."""

    def __call__(self, D, lengthscale):
        D = np.asarray(D, dtype=float)
        return np.exp(-0.5 * (D / lengthscale) ** 2)

    def grad_log_lengthscale(self, D, lengthscale, R=None):
        R = self(D, lengthscale) if R is None else R
        return R * (np.asarray(D, dtype=float) / lengthscale) ** 2


def min_eigenvalue(K: np.ndarray) -> float:
    """Smallest eigenvalue of the symmetric part of ``K``."""
    K = np.asarray(K, dtype=float)
    return float(np.linalg.eigvalsh(0.5 * (K + K.T))[0])


def project_psd(K: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Nearest (Frobenius) symmetric matrix with eigenvalues >= ``floor``: ``V max(L, floor) V^T``.

    Args:
        K: (n, n) matrix; only its symmetric part is used.
        floor: lower bound on the eigenvalues (0 gives the PSD projection).
    Returns:
        (n, n) symmetric matrix; ``K`` itself (symmetrised) when already above the floor.
    """
    K = np.asarray(K, dtype=float)
    S = 0.5 * (K + K.T)
    lam, V = np.linalg.eigh(S)
    if lam[0] >= floor:
        return S
    P = (V * np.maximum(lam, floor)) @ V.T
    return 0.5 * (P + P.T)
