"""What one JKO step returns (:class:`JKOResult`) and the error it raises when it cannot be solved."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["JKOResult", "JKOSolveError"]


@dataclass
class JKOResult:
    """Outcome of one JKO step.

    rho: new density (K, M); flux: optimal edge flux F_e (density per time, edges ``src -> dst``);
    objective: ``F_T(rho') + (tau / 2) action``; action: ``h^d sum_e F_e^2 / c_e(rho')`` (the
    rate action of spec 3.3, so ``tau^2 action`` approximates W_SD(rho, rho')^2); iterations and the
    final scaled residual of the Newton solve (max norm of the continuity rows / max rho and of the
    energy rows / (1 + max |phi|), the energy rows weighted by min(1, rho' / (1e-6 max rho)));
    info: free_energy, mass_drift (sum(rho' - rho) h^d, never renormalised away), linear_solves,
    min_density, barrier_mu.
    """

    rho: np.ndarray
    flux: np.ndarray
    objective: float
    action: float
    iterations: int
    residual: float
    info: dict = field(default_factory=dict)



class JKOSolveError(RuntimeError):
    """A JKO step could not be solved; the message carries the final residual and what to try."""

