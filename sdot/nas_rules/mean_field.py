"""Mean-field limits (N -> infinity) of the NASGD / NASAGD rules: node masses of the upwind master equation.

``dm_g/dt = sum_g' c w [m_g' (E_g' - E_g)_+ - m_g (E_g - E_g')_+]`` and its phi analogue, integrated exactly
over steps with piecewise-constant energies (``scheme="ode"``) or as the exact expectation of the explicit
particle rule (``scheme="expected"``, which differs from the ODE by O(dt)). Costs O(edges) per product.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..space import SemiDiscreteSpace
from ..validation import one_of
from .rules import check_energies, restart_statistic

__all__ = ["upwind_generator", "nasgd_mean_field", "nasagd_mean_field"]


def _check_masses(m: Any, K: int, name: str = "m0") -> np.ndarray:
    """Node masses: shape (K,), finite, >= 0 and summing to 1 (to 1e-9); ValueError naming the value."""
    m = check_energies(m, K, name)
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError(f"{name} must be finite and >= 0, got {m.tolist()}")
    if abs(float(m.sum()) - 1.0) > 1e-9:
        raise ValueError(f"{name} must sum to 1 (a probability vector over the nodes), got sum {float(m.sum())!r}")
    return m


def upwind_generator(space: SemiDiscreteSpace, potential_like: np.ndarray, c: float = 1.0,
                     toward: str = "lower") -> sp.csr_matrix:
    """Generator Q (K, K) of the upwind chain: ``Q[g, g'] = c w (v_g - v_g')_+`` (``toward="lower"``,
    NASGD with v = E) or ``c w (v_g' - v_g)_+`` (``"higher"``, NASAGD with v = phi); rows sum to 0."""
    src, dst, w = space.edges()
    v = np.asarray(potential_like, dtype=float)
    gap = v[src] - v[dst] if toward == "lower" else v[dst] - v[src]
    rate = c * w * np.maximum(gap, 0.0)
    K = space.n_nodes
    Q = sp.coo_matrix((rate, (src, dst)), shape=(K, K)).tocsr()
    return (Q - sp.diags(np.asarray(Q.sum(axis=1)).ravel())).tocsr()


def _energy_at(energies: Any, n: int, K: int) -> np.ndarray:
    E = energies(n) if callable(energies) else np.asarray(energies, dtype=float)[n]
    return check_energies(E, K)


class _UpwindMeanField:
    """One step of the upwind master equation on the edge list (O(edges) per product, no matrix
    assembly): ``expected`` = ``m + dt Q^T m``; ``ode`` = ``m expm(dt Q)`` (Taylor series)."""

    def __init__(self, space: SemiDiscreteSpace, c: float, toward: str):
        self.src, self.dst, w = space.edges()
        self.cw = c * w
        self.K = space.n_nodes
        self.toward = toward

    def rates(self, v: np.ndarray) -> np.ndarray:
        gap = v[self.src] - v[self.dst] if self.toward == "lower" else v[self.dst] - v[self.src]
        return self.cw * np.maximum(gap, 0.0)

    def _apply(self, m: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Q^T m on the edge list."""
        flux = r * m[self.src]
        return np.bincount(self.dst, flux, self.K) - np.bincount(self.src, flux, self.K)

    def advance(self, m: np.ndarray, v: np.ndarray, dt: float, scheme: str) -> np.ndarray:
        r = self.rates(v)
        if scheme == "expected":
            return m + dt * self._apply(m, r)
        # m expm(dt Q) by its Taylor series on sub-steps with dt_sub * max exit rate <= 1/2
        # (edge-list products only: no dense matrix exponential, no BLAS)
        exit_rate = np.bincount(self.src, r, self.K).max(initial=0.0)
        n_sub = max(1, int(math.ceil(dt * exit_rate / 0.5)))
        h = dt / n_sub
        for _ in range(n_sub):
            term, acc = m, m.copy()
            for k in range(1, 60):
                term = self._apply(term, r) * (h / k)
                acc += term
                if np.abs(term).max(initial=0.0) <= 1e-17 * np.abs(acc).max(initial=1.0):
                    break
            m = acc
        return m


def nasgd_mean_field(space: SemiDiscreteSpace, energies: Any, m0: Any, dt: float, n_steps: int, c: float = 1.0,
                     scheme: str = "ode") -> np.ndarray:
    """Node masses of the NASGD mean field, shape (n_steps + 1, K).

    ``dm_g/dt = sum_g' c w [m_g' (E_g' - E_g)_+ - m_g (E_g - E_g')_+]`` with the energies of step n
    held over [n dt, (n + 1) dt). ``energies``: array (n_steps, K) or callable n -> (K,).
    ``scheme="ode"``: exact solution (matrix exponential per step); ``"expected"``: the exact
    expectation of the explicit particle rule ``m + dt Q^T m`` (O(dt) from the ODE).
    """
    one_of("scheme", scheme, ("ode", "expected"))
    K = space.n_nodes
    m = _check_masses(m0, K, "m0").copy()
    mf = _UpwindMeanField(space, c, "lower")
    out = np.empty((n_steps + 1, K))
    out[0] = m
    for n in range(n_steps):
        m = mf.advance(m, _energy_at(energies, n, K), dt, scheme)
        out[n + 1] = m
    return out


def nasagd_mean_field(space: SemiDiscreteSpace, energies: Any, m0: Any, dt: float, n_steps: int, c: float = 1.0,
                      c_p: float = 2.0, *, restart: bool = True, restart_single_support: bool = False,
                      support_tol: float = 0.0, scheme: str = "expected"):
    """Mean field of NASAGD: returns ``(m, phi, restarts)`` with m, phi of shape (n_steps + 1, K).

    Same order as :class:`NASAGD` (restart check, phi update, transport toward larger phi). The
    restart statistic uses the masses m; "single support" counts nodes with ``m_g > support_tol``
    (off by default: in the mean field every node reached carries some mass).
    """
    one_of("scheme", scheme, ("ode", "expected"))
    K = space.n_nodes
    m = check_energies(m0, K, "m0").copy()
    mf = _UpwindMeanField(space, c, "higher")
    phi = np.zeros(K)
    ms, phis, restarts = np.empty((n_steps + 1, K)), np.empty((n_steps + 1, K)), []
    ms[0], phis[0] = m, phi
    for n in range(n_steps):
        E = _energy_at(energies, n, K)
        if restart:
            S = restart_statistic(space, E, phi, m, (mf.src, mf.dst))
            if S >= 0 or (restart_single_support and int(np.count_nonzero(m > support_tol)) == 1):
                phi = np.zeros(K)
                restarts.append(n)
        phi = phi - (dt / c_p) * E
        m = mf.advance(m, phi, dt, scheme)
        ms[n + 1], phis[n + 1] = m, phi
    return ms, phis, restarts
