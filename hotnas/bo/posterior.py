"""The model's output over a finite set A: posterior means, variances and (optionally) the covariance.

Acquisitions (:mod:`hotnas.bo.acquisition`) read only this object, so any model that can fill it (the
distance GP here, or another surrogate) plugs into them. :func:`gp_posterior` fills it from a fitted
:class:`~hotnas.bo.gp.DistanceGP` and the distances of A to the training set (and among A, for the
covariance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sdot.validation import nonnegative

__all__ = ["Posterior", "gp_posterior"]


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
        nonnegative("noise_variance", self.noise_variance)


def gp_posterior(gp: Any, D_cross: np.ndarray, D_set: np.ndarray | None = None, best: float | None = None
                 ) -> Posterior:
    """The posterior of a fitted GP over A: ``D_cross`` (m, n) distances of A to the training points;
    with ``D_set`` (m, m), the distances among A, the full covariance (``var`` its diagonal) as well."""
    if D_set is not None:
        mean, cov = gp.predict(D_cross, D_set, full_cov=True)
        var = np.diag(cov).copy()
    else:
        mean, var = gp.predict(D_cross)
        cov = None
    return Posterior(mean=mean, var=var, cov=cov, noise_variance=gp.noise_variance, best=best)
