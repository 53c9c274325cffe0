"""The temperature schedule of every flow: a number, a pair (T0, T1) annealed geometrically, a schedule or a callable.

:func:`temperature_schedule` turns the ``temperature`` option of a flow into an :mod:`sdot.schedules`
schedule called as ``schedule(progress, k)`` (progress in [0, 1], k queries or steps spent). The pair
``(T0, T1)`` gives ``T_k = T0 q^k`` with ``q = (T1/T0)^(1/horizon)``, so T reaches T1 at the end of the run.
"""

from __future__ import annotations

import math
from typing import Any

from sdot.schedules import FromCallable, Geometric, Schedule, get_schedule

__all__ = ["temperature_schedule"]


def temperature_schedule(temperature: Any, horizon: int) -> Schedule:
    """The temperature as an :mod:`sdot.schedules` schedule, called as ``schedule(progress, k)``.

    ``progress`` in [0, 1] is the fraction of the run done (queries of the budget, or steps) and ``k``
    the number of queries / steps spent. ``temperature`` may be a number (constant), a pair
    ``(T0, T1)`` — geometric annealing ``T0 q^k`` with ``q = (T1/T0)^(1/horizon)``, so T reaches T1
    at the end of the run (sdot ``Geometric`` with floor ``min(T0, T1)``) — a schedule name or
    :class:`sdot.schedules.Schedule`, or a callable of ``progress`` (or ``(progress, k)``).

    Raises ValueError on a non-positive or non-finite temperature in a pair, or a bad horizon.
    """
    if horizon < 1:
        raise ValueError(f"the schedule horizon must be >= 1, got {horizon!r}")
    if isinstance(temperature, (tuple, list)):
        if len(temperature) != 2:
            raise ValueError(f"temperature must be T, (T0, T1), a schedule or a callable, got {temperature!r}")
        T0, T1 = (float(v) for v in temperature)
        for v in (T0, T1):
            if not math.isfinite(v) or v <= 0:
                raise ValueError(f"temperatures must be finite and > 0, got {temperature!r}")
        return Geometric(T0=T0, q=min(1.0, (T1 / T0) ** (1.0 / horizon)), T_min=min(T0, T1)) if T1 <= T0 else \
            FromCallable(lambda s: T0 * (T1 / T0) ** min(max(s, 0.0), 1.0))
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
        if not math.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"temperature must be finite and > 0, got {temperature!r}")
    return get_schedule(temperature)
