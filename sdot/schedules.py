"""Temperature schedules T(t) (spec 1.6), chosen by name or given as a callable.

=================  =====================================  ==========================================
name               T at step k / time t                   parameters
=================  =====================================  ==========================================
``constant``       T0                                     T0 >= 0
``geometric``      T0 q^k (per step k)                    T0 > 0, 0 < q <= 1, T_min >= 0 (floor)
``logarithmic``    c / log(e + t)                         c > 0
callable           user ``T(t)`` (or ``T(t, k)``)         values checked finite and >= 0 when used
=================  =====================================  ==========================================

Every schedule is called as ``schedule(t, k)`` with the time t and the step index k. With a varying
T the free energy and the Gibbs distances use the current T, and the energy-dissipation identity
holds only between temperature changes. These are engineering choices (spec 1.6).
"""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable

from .registry import Registry
from .validation import positive

__all__ = ["Schedule", "Constant", "Geometric", "Logarithmic", "FromCallable", "get_schedule", "SCHEDULES"]


def _check_T(T: float, who: str) -> float:
    T = float(T)
    if not math.isfinite(T) or T < 0:
        raise ValueError(f"schedule {who} produced T = {T!r}; temperatures must be finite and >= 0")
    return T


class Schedule:
    """Base class: ``schedule(t, k) -> T``."""

    name = "schedule"

    def __call__(self, t: float, k: int = 0) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Schedule):
    T0: float
    name = "constant"

    def __post_init__(self):
        _check_T(self.T0, "constant")

    def __call__(self, t: float, k: int = 0) -> float:
        return float(self.T0)


@dataclass(frozen=True)
class Geometric(Schedule):
    T0: float
    q: float
    T_min: float = 0.0
    name = "geometric"

    def __post_init__(self):
        positive("geometric schedule T0", self.T0)
        if not (0 < self.q <= 1):
            raise ValueError(f"geometric schedule needs a ratio 0 < q <= 1, got q = {self.q!r}")
        _check_T(self.T_min, "geometric (T_min)")

    def __call__(self, t: float, k: int = 0) -> float:
        return max(float(self.T0) * float(self.q) ** int(k), float(self.T_min))


@dataclass(frozen=True)
class Logarithmic(Schedule):
    c: float
    name = "logarithmic"

    def __post_init__(self):
        if not (math.isfinite(self.c) and self.c > 0):
            raise ValueError(f"logarithmic schedule needs c > 0, got c = {self.c!r}")

    def __call__(self, t: float, k: int = 0) -> float:
        if t < 0:
            raise ValueError(f"logarithmic schedule is defined for t >= 0, got t = {t!r}")
        return float(self.c) / math.log(math.e + float(t))


class FromCallable(Schedule):
    """Wraps ``fn(t)`` or ``fn(t, k)``; every value is checked (finite, >= 0)."""

    name = "callable"

    def __init__(self, fn: Callable[..., float]):
        if not callable(fn):
            raise TypeError(f"schedule must be callable, got {type(fn).__name__}")
        self.fn = fn
        try:
            n = len(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            n = 1
        self._two = n >= 2

    def __call__(self, t: float, k: int = 0) -> float:
        return _check_T(self.fn(t, k) if self._two else self.fn(t), getattr(self.fn, "__name__", "callable"))


#: name -> Schedule class (one :class:`sdot.registry.Registry`: duplicates refused).
SCHEDULES: Registry = Registry("schedule")
for _name, _cls in (("constant", Constant), ("geometric", Geometric), ("logarithmic", Logarithmic)):
    SCHEDULES.register(_name, _cls)


def get_schedule(spec: Any, **params: Any) -> Schedule:
    """A schedule from a name and parameters, a number (constant), a callable, or a Schedule.

    >>> get_schedule("geometric", T0=1.0, q=0.5)(0.0, 2)
    0.25
    >>> get_schedule(0.3)(5.0)
    0.3
    """
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, str):
        if spec not in SCHEDULES:
            raise ValueError(f"unknown schedule {spec!r}; expected one of {sorted(SCHEDULES)} or a callable")
        try:
            return SCHEDULES[spec](**params)
        except TypeError as e:
            raise ValueError(f"bad parameters {params} for schedule {spec!r}: {e}") from None
    if callable(spec):
        return FromCallable(spec)
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):  # numpy scalars too
        return Constant(float(spec))
    raise TypeError(f"cannot make a schedule from {spec!r}")
