"""Benchmarks by name: ``get_benchmark("nb201", path=...)``, ``get_benchmark("digits", ...)``.

Entries are imported lazily ("module:attribute" relative to this package), so a benchmark whose
module is heavy (training) or not yet present costs nothing until asked for.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable

from .base import Benchmark, Evaluation

__all__ = ["Benchmark", "Evaluation", "BENCHMARKS", "register_benchmark", "get_benchmark"]

#: name -> "module:attribute" (relative to this package) or a factory returning a Benchmark.
BENCHMARKS: dict[str, str | Callable[..., Benchmark]] = {
    "nb201": ".tabular:NB201Benchmark",           # NB201Benchmark(path=None, value_column="val_acc", ...)
    "tabular": ".tabular:TabularBenchmark.from_csv",  # any CSV: path, arch_column, value_column, ...
    "digits": ".trainable:DigitsBenchmark",       # real training on sklearn digits (helper "trainable")
}


def register_benchmark(name: str, factory: str | Callable[..., Benchmark]) -> None:
    """Add a benchmark factory (or a lazy "module:attribute" path) under ``name``."""
    if name in BENCHMARKS:
        raise ValueError(f"a benchmark named {name!r} is already registered")
    BENCHMARKS[name] = factory


def get_benchmark(name: str, **kwargs: Any) -> Benchmark:
    """Build the benchmark registered under ``name`` with its keyword arguments."""
    try:
        entry = BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {sorted(BENCHMARKS)}") from None
    if isinstance(entry, str):
        mod, attr = entry.split(":")
        obj: Any = import_module(mod, __name__)
        for part in attr.split("."):
            obj = getattr(obj, part)
        entry = obj
    return entry(**kwargs)
