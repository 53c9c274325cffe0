"""The non-finite policy of the particle steps: ``nonfinite = "raise" | "freeze" | "reset"``.

Particles whose potential value, gradient, rate or new position is NaN or infinite are either named in a
:class:`NonFiniteError` (``"raise"``), left where they are for the step (``"freeze"``, done by the caller),
or replaced by copies (x, g, p) of uniformly chosen healthy particles (``"reset"``, N fixed). Handled
particles are recorded in ``state.info.nonfinite``; nothing non-finite is ever written into the state.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import to_numpy
from ..validation import one_of
from . import random as draws
from .state import clone_particles

__all__ = ["NONFINITE_POLICIES", "NonFiniteError", "check_policy", "handle_nonfinite"]

NONFINITE_POLICIES = ("raise", "freeze", "reset")


class NonFiniteError(FloatingPointError):
    """Raised under ``nonfinite="raise"`` when particles meet NaN/inf values; ``.indices`` names them."""

    def __init__(self, message: str, indices: np.ndarray):
        super().__init__(message)
        self.indices = indices


def check_policy(nonfinite: str) -> None:
    """ValueError unless ``nonfinite`` is one of :data:`NONFINITE_POLICIES`."""
    one_of("nonfinite", nonfinite, NONFINITE_POLICIES)


def handle_nonfinite(state: Any, bad_global: Any, policy: str, what: str,
                     new_x: Any = None) -> None:
    """Apply the policy to particles ``bad_global`` (indices). For ``reset`` the clones are taken
    from ``new_x`` when given (positions after a move) else from ``state.x``."""
    idx = to_numpy(bad_global).astype(np.int64)
    n_bad = idx.size
    if policy == "raise":
        raise NonFiniteError(
            f"{n_bad} particle(s) met a non-finite {what} (first indices {idx[:8].tolist()}); "
            "pass nonfinite='freeze' to keep them in place or 'reset' to replace them by copies of "
            "healthy particles", idx)
    state.info.add_nonfinite(idx, policy)
    if policy == "reset":
        N = state.n_particles
        healthy_mask = np.ones(N, dtype=bool)
        healthy_mask[idx] = False
        healthy = np.flatnonzero(healthy_mask)
        if healthy.size == 0:
            raise NonFiniteError(f"all {N} particles met a non-finite {what}; nothing to reset from", idx)
        pick = to_numpy(draws.integers(state, healthy.size, n_bad))
        clone_particles(state, idx, healthy[pick], x=new_x)
