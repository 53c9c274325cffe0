"""The log-mean with its first and second derivatives, in the form the Newton Jacobian of the JKO step needs.

The formulas live beside the rate laws (:func:`sdot.rates.logmean_with_derivatives`,
:func:`sdot.rates.logmean_second_derivatives`); this module only bundles them.
"""

from __future__ import annotations

import numpy as np

from ..rates import logmean_second_derivatives, logmean_with_derivatives

__all__ = ["lambda_second"]


def lambda_second(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """(Lambda, Lambda_a, Lambda_b, Lambda_aa, Lambda_ab, Lambda_bb) of the log-mean, a, b > 0 (floored at tiny)."""
    tiny = np.finfo(float).tiny
    a = np.maximum(a, tiny)
    b = np.maximum(b, tiny)
    return (*logmean_with_derivatives(a, b), *logmean_second_derivatives(a, b))
