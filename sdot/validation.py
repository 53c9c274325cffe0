"""Validation at the edge: one helper for every number a user passes (sdot, hotnas and experiments use it).

Each check returns the value as a Python ``float`` (or ``int``) so a caller writes ``tau = positive("tau", tau)``.
A value that is not a number raises ``NotANumberError`` (a ``TypeError`` and a ``ValueError``); a number out
of range (or NaN / inf) raises ``ValueError``.
Both messages name the argument and show the bad value, e.g. ``tau must be a finite number > 0, got -1.0``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["NotANumberError", "as_real", "positive", "nonnegative", "finite", "positive_int", "nonnegative_int", "one_of",
           "check_positive", "check_nonnegative"]


class NotANumberError(TypeError, ValueError):
    """A value that is not a number where one is needed (both a TypeError and, for old callers, a ValueError)."""


def as_real(name: str, v: Any) -> float:
    """``float(v)``; TypeError naming ``name`` when ``v`` is not a real number (bools refused too)."""
    if isinstance(v, (bool, str, bytes)):
        raise NotANumberError(f"{name} must be a real number, got {v!r}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise NotANumberError(f"{name} must be a real number, got {v!r}") from None


def finite(name: str, v: Any) -> float:
    """A finite real number."""
    x = as_real(name, v)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    return x


def positive(name: str, v: Any) -> float:
    """A finite real number > 0."""
    x = as_real(name, v)
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    return x


def nonnegative(name: str, v: Any) -> float:
    """A finite real number >= 0."""
    x = as_real(name, v)
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    return x


def _as_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        if isinstance(v, numbers.Real) and not isinstance(v, bool) and float(v).is_integer():
            return int(v)
        raise NotANumberError(f"{name} must be an integer, got {v!r}")
    return int(v)


def positive_int(name: str, v: Any) -> int:
    """An integer >= 1 (a float with an integer value, e.g. ``2.0``, is accepted)."""
    n = _as_int(name, v)
    if n < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    return n


def nonnegative_int(name: str, v: Any) -> int:
    """An integer >= 0."""
    n = _as_int(name, v)
    if n < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
    return n


def one_of(name: str, v: Any, choices: tuple | list) -> Any:
    """``v`` if it is one of ``choices``; ValueError listing them otherwise."""
    if v not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {v!r}")
    return v


def check_positive(**values: Any) -> None:
    """Keyword form: ValueError/TypeError naming the first of ``values`` that is not a finite number > 0."""
    for name, v in values.items():
        positive(name, v)


def check_nonnegative(**values: Any) -> None:
    """Keyword form: the first of ``values`` that is not a finite number >= 0 raises."""
    for name, v in values.items():
        nonnegative(name, v)
