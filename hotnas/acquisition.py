"""Acquisition functions over a finite set, for *maximising* an objective (validation accuracy).

The search code fits a GP to ``y`` (higher is better) and builds a :class:`Posterior` over a finite
set ``A`` of architectures (the candidate pool and the observed points). An acquisition scores the
candidates, given by their indices into ``A``; the highest score is queried next. One class per
acquisition, registered by name [spec hotnn-and-bo.md, Section 6.4, written there for minimisation]:

- ``kg`` — discrete knowledge gradient (Frazier, Powell, Dayanik 2009), computed exactly:

      KG(x) = E[max_a (mu(a) + st(a, x) Z)] - max_a mu(a),   st(a, x) = k(a, x) / sqrt(k(x, x) + sn2),

  ``Z ~ N(0, 1)``. The expectation of the maximum of lines ``mu_a + st_a z`` is computed from their
  upper envelope: with the envelope's lines sorted by slope and ``c_i`` the breakpoints,
  ``KG = sum_i (st_{i+1} - st_i) f(-|c_i|)``, ``f(z) = z Phi(z) + phi(z)``.
- ``ei`` — expected improvement over the incumbent ``y*``:
  ``EI = (mu - y* - xi) Phi(u) + s phi(u)``, ``u = (mu - y* - xi) / s``.
- ``lcb`` — the confidence bound ``mu + beta s`` (the spec's LCB ``mu - beta s`` on ``-y``; TW-NAS
  multiplies ``s`` by ``beta = 2 log 100``).

Batches of q > 1 come from :func:`kriging_believer` in :mod:`hotnas.optimisers.bo`, which re-scores
after conditioning on the posterior mean of each pick.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from sdot.registry import Registry

__all__ = ["Posterior", "Acquisition", "KnowledgeGradient", "ExpectedImprovement", "ConfidenceBound",
           "ACQUISITIONS", "register_acquisition", "get_acquisition", "kg_envelope", "kg_envelope_batch"]

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


def _pdf(z: np.ndarray) -> np.ndarray:
    return _INV_SQRT_2PI * np.exp(-0.5 * z * z)


def _f(z: np.ndarray) -> np.ndarray:
    """``f(z) = z Phi(z) + phi(z)`` (= E[max(z + Z, 0)])."""
    return z * ndtr(z) + _pdf(z)


@dataclass
class Posterior:
    """GP posterior over a finite set A (units of the objective, maximised).

    Attributes:
        mean: (m,) posterior means over A.
        cov: (m, m) posterior covariance over A, or None when only variances are known.
        var: (m,) posterior variances (the diagonal of ``cov`` when given).
        noise_variance: observation noise variance ``sn2`` (for the KG's predictive update).
        best: incumbent, the best observed value ``y*`` (for EI).
    """

    mean: np.ndarray
    var: np.ndarray
    cov: np.ndarray | None = None
    noise_variance: float = 0.0
    best: float | None = None

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=float)
        self.var = np.maximum(np.asarray(self.var, dtype=float), 0.0)
        m = len(self.mean)
        if self.var.shape != (m,):
            raise ValueError(f"var has shape {self.var.shape}, expected ({m},)")
        if self.cov is not None:
            self.cov = np.asarray(self.cov, dtype=float)
            if self.cov.shape != (m, m):
                raise ValueError(f"cov has shape {self.cov.shape}, expected ({m}, {m})")
        if self.noise_variance < 0:
            raise ValueError(f"noise_variance must be >= 0, got {self.noise_variance}")


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
ACQUISITIONS: Registry = Registry("acquisition", hint="add one with @hotnas.acquisition.register_acquisition(name)")


def register_acquisition(name: str):
    """Class decorator adding an acquisition to the registry under ``name`` (same class again: no-op)."""

    def deco(cls):
        cls.name = name
        ACQUISITIONS.register(name, cls)
        return cls

    return deco


def get_acquisition(name: str | Acquisition, **kwargs: Any) -> Acquisition:
    """An acquisition by registered name (``"kg"``, ``"ei"``, ``"lcb"``) with its options."""
    if isinstance(name, Acquisition):
        return name
    return ACQUISITIONS.load(name)(**kwargs)


# ---------------------------------------------------------------------- knowledge gradient
def kg_envelope(a: np.ndarray, b: np.ndarray) -> float:
    """``E[max_i (a_i + b_i Z)] - max_i a_i`` for one set of lines, by the classic sort-and-stack
    algorithm (Frazier et al. 2009, Algorithm 1). Reference implementation, O(m log m)."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    order = np.lexsort((a, b))  # by slope, then intercept
    a, b = a[order], b[order]
    keep = np.append(b[1:] != b[:-1], True)  # equal slopes: keep the largest intercept
    a, b = a[keep], b[keep]
    lines: list[int] = []
    cuts: list[float] = []  # cuts[j]: where lines[j] starts to dominate (cuts[0] = -inf)
    for i in range(len(a)):
        while lines:
            j = lines[-1]
            c = (a[j] - a[i]) / (b[i] - b[j])
            if c <= cuts[-1]:
                lines.pop()
                cuts.pop()
            else:
                lines.append(i)
                cuts.append(c)
                break
        if not lines:
            lines.append(i)
            cuts.append(-np.inf)
    bb = b[lines]
    c = np.asarray(cuts[1:])
    return float(np.sum(np.diff(bb) * _f(-np.abs(c))))


def kg_envelope_batch(a: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Exact ``E[max_i (a_i + B_ki Z)] - max_i a_i`` for every row ``k`` of slopes, vectorised.

    The upper envelope is walked from ``z = -inf`` for all rows at once: from the current line
    (smallest slope first), the next envelope line is the one with a larger slope whose crossing
    with the current line comes first (ties: the largest slope). Each step costs O(K m); the
    number of steps is the largest envelope size.

    Args:
        a: (m,) intercepts (posterior means over A).
        B: (K, m) slopes, one row per candidate.
    Returns:
        (K,) knowledge-gradient values, >= 0.
    """
    a = np.asarray(a, dtype=float)
    B = np.atleast_2d(np.asarray(B, dtype=float))
    K, m = B.shape
    if a.shape != (m,):
        raise ValueError(f"intercepts have shape {a.shape}, expected ({m},)")
    out = np.zeros(K)
    if m <= 1 or K == 0:
        return out
    rows = np.arange(K)
    tol = 1e-12 * max(1.0, float(np.abs(B).max()))
    # start: the smallest slope, the largest intercept among equal slopes
    bmin = B.min(axis=1, keepdims=True)
    cur = np.where(B <= bmin + tol, a[None, :], -np.inf).argmax(axis=1)
    last_c = np.full(K, -np.inf)
    active = np.ones(K, dtype=bool)
    for _ in range(m):
        r = rows[active]
        if r.size == 0:
            break
        bc = B[r, cur[r]][:, None]
        ac = a[cur[r]][:, None]
        db = B[r] - bc
        steeper = db > tol
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(steeper, (ac - a[None, :]) / np.where(steeper, db, 1.0), np.inf)
        zmin = z.min(axis=1)
        done = ~np.isfinite(zmin)
        if done.any():
            active[r[done]] = False
        go = ~done
        if not go.any():
            break
        r, z, zmin, db = r[go], z[go], zmin[go], db[go]
        near = z <= (zmin + 1e-12 * np.maximum(1.0, np.abs(zmin)))[:, None]
        nxt = np.where(near, db, -np.inf).argmax(axis=1)
        c = np.maximum(zmin, last_c[r])  # breakpoints are non-decreasing along the envelope
        out[r] += db[np.arange(len(r)), nxt] * _f(-np.abs(c))
        last_c[r] = c
        cur[r] = nxt
    return out


@register_acquisition("kg")
class KnowledgeGradient(Acquisition):
    """Exact discrete knowledge gradient over the whole set A of the posterior (module docstring).

    Needs the posterior covariance over A. ``candidates`` are the points one may query (indices
    into A); the maximum runs over all of A (pool and observed points).
    """

    needs_cov = True

    def __call__(self, post: Posterior, candidates=None) -> np.ndarray:
        idx = self._idx(post, candidates)
        if post.cov is None:
            raise ValueError("the knowledge gradient needs the posterior covariance over A (Posterior.cov)")
        denom = np.sqrt(np.maximum(post.var[idx] + post.noise_variance, 1e-300))
        slopes = post.cov[idx] / denom[:, None]  # (K, m): st(a, x) for candidate rows x
        return kg_envelope_batch(post.mean, slopes)


@register_acquisition("ei")
class ExpectedImprovement(Acquisition):
    """Expected improvement over the incumbent ``Posterior.best`` with margin ``xi``."""

    def __init__(self, xi: float = 0.0):
        self.xi = float(xi)

    def __call__(self, post: Posterior, candidates=None) -> np.ndarray:
        idx = self._idx(post, candidates)
        if post.best is None:
            raise ValueError("expected improvement needs the incumbent value (Posterior.best)")
        mu, s = post.mean[idx], np.sqrt(post.var[idx])
        d = mu - post.best - self.xi
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(s > 0, d / np.where(s > 0, s, 1.0), 0.0)
        return np.where(s > 0, d * ndtr(u) + s * _pdf(u), np.maximum(d, 0.0))


@register_acquisition("lcb")
class ConfidenceBound(Acquisition):
    """Optimistic confidence bound ``mu + beta s`` (LCB of ``-y``); TW-NAS's ``beta = 2 log 100``."""

    def __init__(self, beta: float = 2.0 * np.log(100.0)):
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.beta = float(beta)

    def __call__(self, post: Posterior, candidates=None) -> np.ndarray:
        idx = self._idx(post, candidates)
        return post.mean[idx] + self.beta * np.sqrt(post.var[idx])
