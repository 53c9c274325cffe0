"""Plumbing shared by the study scripts (``python -m experiments.studies.<name>``), written once.

- command line: :func:`study_parser` (the study's docstring as help, ``--smoke``, and the common flags
  ``--config --workers --seeds --first-seed --seed --budget --out --aggregate --threads`` with the study's own
  defaults), :func:`parse_study_args` (a TOML ``--config`` sets defaults, flags on the command line win),
  :func:`load_config` (a study TOML merged into defaults; unknown keys refused);
- the optimisers' settings: :func:`optimiser_defaults` reads them from the registered optimiser, so a
  study does not write the flow's (or HOTNAS's) defaults again;
- per-worker caches: :func:`worker_cache`, :func:`cached_benchmark`, :func:`cached_engine` (one
  benchmark table and one distance engine per process, reused by all its trials); :func:`search` (one
  seeded search on a cached benchmark) and :func:`run_tasks` (serial or a process pool, in task order);
- summaries: :func:`describe` (mean ± std or ± s.e. of a sample), :func:`curve_matrix` and
  :func:`summarise` (per label: mean ± spread at checkpoints, best-found rate, paired differences to a
  reference on the same seeds with their standard error);
- :func:`keep_torch_threads` and :func:`write_study` (markdown table and JSON into the output folder).

Figures are drawn with :func:`experiments.plots.pyplot` and written by :func:`experiments.plots.save_figure`.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import time
import tomllib
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

__all__ = ["study_parser", "parse_study_args", "load_config", "optimiser_defaults", "worker_cache",
           "cached_benchmark", "cached_engine", "search", "run_tasks", "describe", "curve_matrix",
           "summarise", "keep_torch_threads", "write_study"]

# ------------------------------------------------------------------------------------------ command line
_COMMON: dict[str, tuple[type | None, str]] = {
    "config": (str, "TOML of the study's settings (its keys: the long options, or the study's own keys)"),
    "workers": (int, "processes (0: one per core; 1: serial, in this process)"),
    "seeds": (int, "seeds (trials) per method"),
    "first_seed": (int, "first trial index (to split a study over several runs)"),
    "seed": (int, "root seed of the per-trial streams (SeedSequence(seed).spawn)"),
    "budget": (int, "queries per search"),
    "out": (str, "output folder"),
    "aggregate": (None, "only rebuild the outputs from the trials already written"),
    "threads": (int, "torch threads while the study runs (restored afterwards: keep_torch_threads)"),
}


def study_parser(doc: str, smoke_help: str | None = None, **common: Any) -> argparse.ArgumentParser:
    """An argument parser described by the first paragraph of ``doc`` (the rest is shown verbatim in
    ``--help``) with a ``--smoke`` flag (the study's quick pipeline check) and, for each keyword of
    ``common`` among ``config, workers, seeds, first_seed, seed, budget, out, aggregate, threads``, that flag with
    the keyword's value as its default (``aggregate=True`` adds the switch)."""
    unknown = set(common) - set(_COMMON)
    if unknown:
        raise TypeError(f"study_parser: unknown common options {sorted(unknown)}; expected some of {sorted(_COMMON)}")
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help=smoke_help)
    for name, default in common.items():
        kind, help_ = _COMMON[name]
        flag = "--" + name.replace("_", "-")
        if kind is None:
            ap.add_argument(flag, action="store_true", help=help_)
        else:
            ap.add_argument(flag, type=kind, default=default, help=help_)
    return ap


def load_config(path: str | Path, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` updated by the TOML file ``path`` (a key's dashes read as underscores; a table merged
    into a dict default); a key ``defaults`` does not have is refused, naming the keys it does have."""
    with open(path, "rb") as fh:
        user = {k.replace("-", "_"): v for k, v in tomllib.load(fh).items()}
    unknown = set(user) - set(defaults)
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; expected some of {sorted(defaults)}")
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in defaults.items()}
    for k, v in user.items():
        cfg[k] = {**cfg[k], **v} if isinstance(cfg[k], dict) and isinstance(v, dict) else v
    return cfg


def parse_study_args(ap: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """``ap.parse_args(argv)``, where a ``--config`` TOML (keys: the parser's long options) first sets the
    defaults, so that the flags given on the command line override the file."""
    args = ap.parse_args(argv)
    if getattr(args, "config", None):
        actions = {a.dest: a for a in ap._actions if a.dest not in ("help", "config", "smoke")}
        cfg = load_config(args.config, {k: a.default for k, a in actions.items()})
        for k, v in cfg.items():  # argparse checks the choices of command-line values only
            choices = actions[k].choices
            bad = [x for x in (v if isinstance(v, list) else [v]) if choices is not None and x not in choices]
            if bad:
                ap.error(f"{args.config}: {k} = {v!r}: {bad} not among {sorted(choices)}")
        ap.set_defaults(**cfg)
        args = ap.parse_args(argv)
    return args


# ------------------------------------------------------------------------------------------ optimisers' settings
def optimiser_defaults(name: str, *keys: str) -> dict[str, Any]:
    """The default values of ``keys`` (in that order) of the flow ``name`` (:func:`hotnas.flows.defaults`:
    ``flow``, ``trainable``, ``independent``, ...) or else of the registered optimiser ``name``, read from
    its constructor's signature: a study that runs "the flow at its defaults" names them, it does not
    write them again. A key it does not take, or takes without a default, is an error."""
    from hotnas import flows

    if name in flows.FLOWS:
        known = flows.defaults(name)
    else:
        from hotnas.optimisers import OPTIMISERS

        params = inspect.signature(OPTIMISERS[name].__init__).parameters
        known = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    missing = [k for k in keys if k not in known]
    if missing:
        raise KeyError(f"{name!r} has no default for {missing}; its defaults: {sorted(known)}")
    return {k: known[k] for k in keys}


# ------------------------------------------------------------------------------------------ per-worker caches
_WORKER: dict[Any, Any] = {}  # one per process: forked or spawned workers each build their own


def worker_cache(key: Any, make: Callable[[], Any]) -> Any:
    """The object cached under ``key`` in this process, made by ``make()`` on first use."""
    if key not in _WORKER:
        _WORKER[key] = make()
    return _WORKER[key]


def cached_benchmark(name: str, **options: Any) -> Any:
    """This process's benchmark ``name`` (``get_benchmark(name, **options)``, built once)."""
    from hotnas.benchmarks import get_benchmark

    return worker_cache(("benchmark", name, tuple(sorted(options.items()))), lambda: get_benchmark(name, **options))


def cached_engine(space: Any, method: str = "hotnn") -> Any:
    """This process's pairwise distance engine of ``method`` on ``space`` (distances cached across trials)."""
    from hotnas.distances.engine import PairwiseDistances

    return worker_cache(("engine", space.name, method), lambda: PairwiseDistances(space, method=method, n_jobs=1))


def search(method: str, bench: Any, options: Mapping[str, Any], *, stream: Any, budget: int, seed: int,
           engine: str | None = None, budget_option: bool = False) -> tuple[Any, Any, float, float]:
    """One seeded search: the optimiser ``method`` on ``bench.space`` built with ``options`` (plus this
    worker's distance engine of method ``engine``, and ``budget=budget`` when ``budget_option``), its
    generator ``default_rng(stream)``, run by ``run_search`` for ``budget`` queries on ``bench`` (a cached
    benchmark is reused: its counters are zeroed first, ``Benchmark.reset_counters``).
    Returns (optimiser, SearchResult, wall seconds, CPU seconds)."""
    from hotnas.optimisers import get_optimiser, run_search

    bench.reset_counters()
    opts = dict(options)
    if engine is not None:
        opts["engine"] = cached_engine(bench.space, engine)
    if budget_option:
        opts["budget"] = budget
    opt = get_optimiser(method, bench.space, seed=np.random.default_rng(stream), **opts)
    t0, c0 = time.perf_counter(), time.process_time()
    res = run_search(opt, bench, budget=budget, seed=seed)
    return opt, res, time.perf_counter() - t0, time.process_time() - c0


def run_tasks(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int) -> Iterator[Any]:
    """``fn(task)`` for each task, yielded in task order: in this process one at a time when ``workers``
    is 1, else in a process pool of ``workers`` (0: one per core) with all tasks submitted at once."""
    from experiments.executors import make_executor

    if workers == 1:
        for t in tasks:
            yield fn(t)
        return
    with make_executor("process", workers) as ex:
        for f in [ex.submit(fn, t) for t in tasks]:
            yield f.result()


# ------------------------------------------------------------------------------------------ summaries
def describe(values: Iterable[Any], spread: str = "std") -> tuple[float, float, int]:
    """(mean, spread, n) of the values that are not None: ``spread`` "std" (ddof 0) or "se" (the standard
    error ``sd / sqrt(n)``, sd with ddof 1; NaN for n < 2). NaN, NaN, 0 for no values."""
    v = values.astype(float) if isinstance(values, np.ndarray) else \
        np.array([x for x in values if x is not None], dtype=float)
    n = int(v.size)
    if n == 0:
        return float("nan"), float("nan"), 0
    if spread == "std":
        return float(v.mean()), float(v.std()), n
    if spread == "se":
        return float(v.mean()), float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"), n
    raise ValueError(f"spread must be 'std' or 'se', got {spread!r}")


def curve_matrix(curves: Iterable[Sequence[float]], pad: str = "last") -> np.ndarray:
    """Stack per-seed curves into an (n_seeds, length) array: ``pad`` "last" (the longest length; a run that
    stopped early keeps its last value), "nan" (the longest, NaN past a run's end) or "cut" (the shortest)."""
    rows = [np.asarray(c, dtype=float) for c in curves]
    if pad == "cut":
        L = min(len(r) for r in rows)
        return np.array([r[:L] for r in rows]).reshape(len(rows), L)
    if pad not in ("last", "nan"):
        raise ValueError(f"pad must be 'last', 'nan' or 'cut', got {pad!r}")
    M = np.full((len(rows), max(len(r) for r in rows)), np.nan)
    for i, r in enumerate(rows):
        M[i, :len(r)] = r
        if pad == "last":
            M[i, len(r):] = r[-1] if len(r) else np.nan
    return M


def summarise(curves: Mapping[str, np.ndarray], checkpoints: Iterable[int], *, spread: str = "se",
              reference: str | None = None, seeds: Mapping[str, Sequence[int]] | None = None,
              difference: str = "label-reference", min_pairs: int = 1,
              found_tol: float = 1e-9) -> dict[str, dict[str, Any]]:
    """The one summary of the study scripts. ``curves[label]`` is an (n_seeds, length) matrix (regret, or
    any per-query value; :func:`curve_matrix`). Per label:

    - ``n``; ``found``: the fraction of seeds whose last value is <= ``found_tol`` (a regret: the best found);
    - ``at[q]`` = (mean, spread) over seeds of column q - 1 for each checkpoint q <= length (:func:`describe`);
    - with ``reference``, for every other label with at least ``min_pairs`` seeds in common (``seeds[label]``
      names each row's seed; without it rows are paired by position): ``paired[q]`` = (mean, s.e.) of
      ``value_label - value_reference`` (``difference="reference-label"`` for the other sign) on those seeds,
      ``n_pairs``; the reference's own entry has ``paired[q]`` of its zero differences.
    """
    if difference not in ("label-reference", "reference-label"):
        raise ValueError(f"difference must be 'label-reference' or 'reference-label', got {difference!r}")
    qs = sorted(set(checkpoints))
    out: dict[str, dict[str, Any]] = {}
    for label, M in curves.items():
        M = np.asarray(M, dtype=float)
        e: dict[str, Any] = {"n": len(M), "found": float(np.mean(M[:, -1] <= found_tol)),
                             "at": {q: describe(M[:, q - 1], spread)[:2] for q in qs if q <= M.shape[1]}}
        if reference is not None:
            R = np.asarray(curves[reference], dtype=float)
            if seeds is None:
                common = list(range(min(len(M), len(R))))
                a, b = M[common], R[common]
            else:
                common = sorted(set(seeds[label]) & set(seeds[reference]))
                a = M[[list(seeds[label]).index(s) for s in common]]
                b = R[[list(seeds[reference]).index(s) for s in common]]
            if len(common) >= min_pairs:
                e["n_pairs"] = len(common)
                d = a - b if difference == "label-reference" else b - a
                e["paired"] = {q: describe(d[:, q - 1], "se")[:2] for q in qs
                               if q <= a.shape[1] and q <= b.shape[1]}
        out[label] = e
    return out


# ------------------------------------------------------------------------------------------ running and writing
def keep_torch_threads(main: Callable[[list[str] | None], Any], argv: list[str] | None = None) -> Any:
    """``main(argv)``, with torch's thread count set back to its value before the call however it ends."""
    import torch

    threads = torch.get_num_threads()
    try:
        return main(argv)
    finally:
        torch.set_num_threads(threads)


def write_study(out: str | Path, md: str, results: dict[str, Any], wall: float, *, indent: int | None = None,
                table: str = "table.md", data: str = "results.json", echo: bool = True) -> Path:
    """Print ``md`` and ``wall`` (seconds) when ``echo``; write ``md`` to ``out/<table>`` and ``results`` to
    ``out/<data>`` (numbers JSON does not know, e.g. numpy scalars, as floats; ``indent`` as in
    :func:`json.dumps`). Creates ``out`` and returns it as a Path."""
    if echo:
        print(md)
        print(f"wall-clock {wall:.0f} s")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / table).write_text(md + "\n")
    (out / data).write_text(json.dumps(results, default=float, indent=indent))
    return out
