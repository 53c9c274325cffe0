"""Acquisition functions over a finite set, for *maximising* an objective (validation accuracy).

The search code fits a GP to ``y`` (higher is better) and builds a :class:`~hotnas.bo.posterior.Posterior`
over a finite set ``A`` of architectures (the candidate pool and the observed points). An acquisition
scores the candidates, given by their indices into ``A``; the highest score is queried next. One class
per acquisition, one job each, registered by name [spec hotnn-and-bo.md, Section 6.4, written there for
minimisation]:

- ``kg`` — the exact discrete knowledge gradient (:mod:`hotnas.bo.knowledge_gradient`);
- ``ei`` — expected improvement over the incumbent ``y*``:
  ``EI = (mu - y* - xi) Phi(u) + s phi(u)``, ``u = (mu - y* - xi) / s`` (``max(0, mu - y* - xi)`` at ``s = 0``);
- ``lcb`` — the confidence bound ``mu + beta s`` (the spec's LCB ``mu - beta s`` on ``-y``; TW-NAS
  multiplies ``s`` by ``beta = 2 log 100``).

Batches of q > 1 come from :func:`hotnas.bo.batch.kriging_believer`, which re-scores after conditioning
on the posterior mean of each pick.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from scipy.special import ndtr

from sdot.registry import Registry
from sdot.validation import finite, nonnegative

from .posterior import Posterior
from .registration import register_named

__all__ = ["Acquisition", "ExpectedImprovement", "ConfidenceBound", "ACQUISITIONS", "register_acquisition",
           "get_acquisition", "normal_pdf", "expected_positive_part"]

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def normal_pdf(z: np.ndarray) -> np.ndarray:
    """The standard normal density ``phi(z)``."""
    return _INV_SQRT_2PI * np.exp(-0.5 * z * z)


def expected_positive_part(z: np.ndarray) -> np.ndarray:
    """``f(z) = z Phi(z) + phi(z) = E[max(z + Z, 0)]``, ``Z ~ N(0, 1)``."""
    return z * ndtr(z) + normal_pdf(z)


class Acquisition(ABC):
    """Scores candidates (indices into the posterior's set A); higher is better."""

    name: str = "acquisition"
    needs_cov: bool = False

    @abstractmethod
    def __call__(self, post: Posterior, candidates: np.ndarray | None = None) -> np.ndarray:
        """Scores (len(candidates),); ``candidates`` defaults to all of A."""

    @staticmethod
    def _idx(post: Posterior, candidates) -> np.ndarray:
        idx = np.arange(len(post.mean)) if candidates is None else np.asarray(candidates, dtype=int)
        if idx.size and (idx.min() < 0 or idx.max() >= len(post.mean)):
            raise IndexError(f"candidate indices must lie in [0, {len(post.mean)})")
        return idx


#: name -> Acquisition class (one :class:`sdot.registry.Registry`: duplicates refused, did-you-mean errors).
ACQUISITIONS: Registry = Registry("acquisition",
                                   hint="add one with @hotnas.bo.register_acquisition(name)")


def register_acquisition(name: str):
    """Class decorator adding an acquisition to the registry under ``name`` (same class again: no-op)."""
    return register_named(ACQUISITIONS, name)


def get_acquisition(name: str | Acquisition, **kwargs: Any) -> Acquisition:
    """An acquisition by registered name (``"kg"``, ``"ei"``, ``"lcb"``) with its options (an instance passes
    through unchanged)."""
    if isinstance(name, Acquisition):
        return name
    return ACQUISITIONS.load(name)(**kwargs)


@register_acquisition("ei")
class ExpectedImprovement(Acquisition):
    """Expected improvement over the incumbent ``Posterior.best`` with margin ``xi``."""

    def __init__(self, xi: float = 0.0):
        self.xi = finite("xi", xi)

    def __call__(self, post: Posterior, candidates=None) -> np.ndarray:
        idx = self._idx(post, candidates)
        if post.best is None:
            raise ValueError("expected improvement needs the incumbent value (Posterior.best)")
        mu, s = post.mean[idx], np.sqrt(post.var[idx])
        d = mu - post.best - self.xi
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(s > 0, d / np.where(s > 0, s, 1.0), 0.0)
        return np.where(s > 0, d * ndtr(u) + s * normal_pdf(u), np.maximum(d, 0.0))


@register_acquisition("lcb")
class ConfidenceBound(Acquisition):
    """Optimistic confidence bound ``mu + beta s`` (LCB of ``-y``); TW-NAS's ``beta = 2 log 100``."""

    def __init__(self, beta: float = 2.0 * np.log(100.0)):
        self.beta = nonnegative("beta", beta)

    def __call__(self, post: Posterior, candidates=None) -> np.ndarray:
        idx = self._idx(post, candidates)
        return post.mean[idx] + self.beta * np.sqrt(post.var[idx])
