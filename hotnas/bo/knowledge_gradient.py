"""The exact discrete knowledge gradient (Frazier, Powell, Dayanik 2009) over a finite set A.

    KG(x) = E[max_a (mu(a) + st(a, x) Z)] - max_a mu(a),   st(a, x) = k(a, x) / sqrt(k(x, x) + sn2),

``Z ~ N(0, 1)``. The expectation of the maximum of lines ``mu_a + st_a z`` is computed from their upper
envelope: with the envelope's lines sorted by slope and ``c_i`` the breakpoints,
``KG = sum_i (st_{i+1} - st_i) f(-|c_i|)``, ``f(z) = z Phi(z) + phi(z)``
(:func:`~hotnas.bo.acquisition.expected_positive_part`).
"""

from __future__ import annotations

import numpy as np

from .acquisition import Acquisition, expected_positive_part, register_acquisition
from .posterior import Posterior

__all__ = ["KnowledgeGradient", "kg_envelope", "kg_envelope_batch"]


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
    return float(np.sum(np.diff(bb) * expected_positive_part(-np.abs(c))))


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
        out[r] += db[np.arange(len(r)), nxt] * expected_positive_part(-np.abs(c))
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
