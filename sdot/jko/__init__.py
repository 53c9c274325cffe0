"""Minimizing-movement (JKO) steps on a grid of states R^d x G (spec 5, 7.3; issue 16).

One idea per module:

* :mod:`~sdot.jko.step`            :class:`JKOStep`, the dynamic (metric) one-step form solved by Newton
                                   (optimality system, conductances theta, predictor, warm start);
* :mod:`~sdot.jko.newton_system`   its sparse Jacobian and linear solvers (banded LU, preconditioned GMRES);
* :mod:`~sdot.jko.logmean_second`  second derivatives of the log-mean;
* :mod:`~sdot.jko.result`          :class:`JKOResult`, :class:`JKOSolveError`;
* :mod:`~sdot.jko.entropic`        :class:`EntropicJKOStep` (static, entropic) and its derived limit law;
* :mod:`~sdot.jko.two_point`       the closed-form two-node distance.
"""

from .entropic import EntropicJKOStep, entropic_limit_rhs
from .logmean_second import lambda_second as _lambda_second  # noqa: F401  (old private name)
from .result import JKOResult, JKOSolveError
from .step import SCHEMES, THETAS, JKOStep
from .two_point import two_point_distance

__all__ = ["THETAS", "SCHEMES", "JKOStep", "JKOResult", "JKOSolveError", "EntropicJKOStep", "two_point_distance",
           "entropic_limit_rhs"]
