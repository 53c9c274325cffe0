"""Benchmarks by name: ``get_benchmark("nb201", path=...)``, ``get_benchmark("digits", ...)``.

Entries are imported lazily ("module:attribute" relative to this package), so a benchmark whose
module is heavy (training) or not yet present costs nothing until asked for.
"""

from __future__ import annotations

from typing import Any, Callable

from sdot.registry import Registry

from .base import Benchmark, Evaluation

__all__ = ["Benchmark", "Evaluation", "BENCHMARKS", "register_benchmark", "get_benchmark"]

#: name -> "module:attribute" (relative to this package) or a factory returning a Benchmark.
BENCHMARKS: Registry = Registry("benchmark", package=__name__,
                                hint="add one with hotnas.benchmarks.register_benchmark(name, factory)")
BENCHMARKS.register("nb201", ".tabular:NB201Benchmark")            # NB201Benchmark(path=None, value_column="val_acc", ...)
BENCHMARKS.register("tabular", ".tabular:TabularBenchmark.from_csv")  # any CSV: path, arch_column, value_column, ...
BENCHMARKS.register("digits", ".trainable:DigitsBenchmark")         # real training on sklearn digits
BENCHMARKS.register("digits-nb201", ".digits_table:DigitsTableBenchmark")  # shipped digits ground-truth table
BENCHMARKS.register("nb201-official", ".nb201_official:NB201OfficialBenchmark")  # official NB201 / NATS-Bench files: path, dataset, hp
BENCHMARKS.register("darts-725", ".subsets:darts_725")  # search within the 725 DARTS genotypes of hotnas.data
BENCHMARKS.register("nb101-500", ".subsets:nb101_500")  # search within the 500 NB101 cells of hotnas.data


def register_benchmark(name: str, factory: str | Callable[..., Benchmark], *, replace: bool = False) -> None:
    """Add a benchmark factory (or a lazy "module:attribute" path) under ``name``.

    The same factory again is a no-op (a plugin imported twice); another one under a taken name
    raises (``replace=True`` overrides)."""
    if not (callable(factory) or isinstance(factory, str)):
        raise TypeError(f"register_benchmark({name!r}, ...) needs a callable or a 'module:attr' string, got {factory!r}")
    BENCHMARKS.register(name, factory, replace=replace)


def get_benchmark(name: str, **kwargs: Any) -> Benchmark:
    """Build the benchmark registered under ``name`` with its keyword arguments."""
    return BENCHMARKS.load(name)(**kwargs)
