"""Summaries and Markdown reports of run directories.

:func:`summarise` reduces trial results to per-method statistics (mean ± std over seeds of the best
validation value, its regret when the optimum is known, and the test value of the best-so-far
architecture, at milestone query counts); :func:`write_report` draws the figures
(:mod:`experiments.plots`) and writes ``report.md`` — the table, then the PNGs.
:func:`export_csv` (``sdot-nas export RUN_DIR --csv OUT``) and :func:`trials_frame` give every
evaluation of every trial as one tidy row (:data:`EXPORT_COLUMNS`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config
from .rundir import RunDir, atomic_write, build_benchmark, load_trial_results

__all__ = ["summarise", "write_report", "make_figures", "trial_rows", "export_csv", "trials_frame",
           "EXPORT_COLUMNS"]

#: Columns of :func:`export_csv`: the trial, then :attr:`hotnas.optimisers.base.SearchResult.COLUMNS`
#: (``method`` is the method's label), then whether the trial was unfinished.
EXPORT_COLUMNS = ("trial", "optimiser", "method", "seed", "query", "arch", "value", "test", "cost", "cumulative_cost",
                  "best_so_far", "test_of_best", "regret", "recommendation", "wall_clock", "partial")


def trial_rows(run: RunDir | str | Path) -> list[dict[str, Any]]:
    """One row per evaluation of every trial of a run directory (finished or not), trials in order."""
    from hotnas.optimisers.base import SearchResult

    run = run if isinstance(run, RunDir) else RunDir.open(run)
    rows: list[dict[str, Any]] = []
    for tid, r in sorted(load_trial_results(run).items()):
        res = SearchResult.from_dict({**r, "method": r.get("label") or r.get("method")})
        for row in res.rows():
            row.update(trial=tid, optimiser=r.get("optimiser"), partial=bool(r.get("partial", False)))
            rows.append(row)
    return rows


def export_csv(run: RunDir | str | Path, path: str | Path) -> int:
    """Write :func:`trial_rows` as a tidy CSV (``"-"``: standard output); returns the number of rows."""
    import sys

    from hotnas.optimisers.base import write_csv

    rows = trial_rows(run)
    write_csv(rows, sys.stdout if str(path) == "-" else path, EXPORT_COLUMNS)
    return len(rows)


def trials_frame(run: RunDir | str | Path) -> Any:
    """:func:`trial_rows` as a ``pandas.DataFrame`` (pandas is optional)."""
    from hotnas.optimisers.base import _pandas

    return _pandas("trials_frame()").DataFrame(trial_rows(run), columns=list(EXPORT_COLUMNS))


def _stat(values: list[float | None]) -> dict[str, float] | None:
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return None
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}


def _at(trace: list, q: int) -> Any:
    return trace[min(q, len(trace)) - 1] if trace else None


def summarise(config: Config, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per-method statistics at the milestones, per-trial finals (JSON-able)."""
    from .plots import by_method

    optima = {r.get("optimum") for r in results.values()} - {None}
    optimum = optima.pop() if len(optima) == 1 else None       # one table: one optimum
    has_opt = bool(results) and all(r.get("optimum") is not None for r in results.values())
    milestones = config.milestones()
    methods: dict[str, Any] = {}
    for label, runs in by_method(results, [m.label for m in config.methods]).items():
        entry: dict[str, Any] = {"trials": len(runs), "seeds": [r.get("seed") for r in runs], "milestones": {}}
        def regrets(q: int | None) -> dict[str, float] | None:
            if not has_opt:
                return None
            return _stat([r["optimum"] - _at(r["best_so_far"], q or len(r["best_so_far"]))
                          for r in runs if r["best_so_far"]])

        for q in milestones:
            entry["milestones"][str(q)] = {
                "best": _stat([_at(r["best_so_far"], q) for r in runs]),
                "test_of_best": _stat([_at(r["test_of_best"], q) for r in runs]),
                "regret": regrets(q),
            }
        entry["final"] = {
            "best": _stat([r["best_so_far"][-1] if r["best_so_far"] else None for r in runs]),
            "test_of_best": _stat([r["test_of_best"][-1] if r["test_of_best"] else None for r in runs]),
            "test_of_recommendation": _stat([_test_of_recommendation(r) for r in runs]),
            "regret": regrets(None),
            "found_optimum": (sum(1 for r in runs if r["best_so_far"] and r["best_so_far"][-1] >= r["optimum"] - 1e-9)
                              if has_opt else None),
            "queries": _stat([len(r["values"]) for r in runs]),
            "cost": _stat([r.get("total_cost") for r in runs]),
            "wall_time_s": _stat([r.get("wall_time") for r in runs]),
        }
        methods[label] = entry
    trials = {tid: {"label": r.get("label"), "seed": r.get("seed"), "queries": len(r["values"]),
                    "best": r["best_so_far"][-1] if r["best_so_far"] else None,
                    "test_of_best": r["test_of_best"][-1] if r["test_of_best"] else None,
                    "recommendation": r["recommendations"][-1] if r["recommendations"] else None,
                    "cost": r.get("total_cost"), "wall_time_s": r.get("wall_time"), "partial": r.get("partial", False)}
              for tid, r in sorted(results.items())}
    return {"name": config.name, "fingerprint": config.fingerprint(), "benchmark": config.benchmark.name,
            "benchmark_options": config.benchmark.options, "budget": config.search.budget,
            "seeds": config.search.seeds, "optimum": optimum, "has_optimum": has_opt, "milestones": milestones, "methods": methods,
            "trials": trials}


def _test_of_recommendation(r: dict[str, Any]) -> float | None:
    rec = r["recommendations"][-1] if r.get("recommendations") else None
    if rec is None or rec not in r["archs"]:
        return None
    return r["tests"][r["archs"].index(rec)]


def _fmt(s: dict[str, float] | None, digits: int = 2) -> str:
    if not s:
        return "–"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"


def make_figures(run: RunDir, config: Config, results: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """Draw the run's figures into ``RUN_DIR/figures``; return ``[(caption, relative path)]``."""
    from . import plots

    fig_dir = run.path / "figures"
    order = [m.label for m in config.methods]
    optima = {r.get("optimum") for r in results.values()}
    out: list[tuple[str, str]] = []

    def add(caption: str, path: Path) -> None:
        out.append((caption, str(path.relative_to(run.path))))

    if not results:
        return out
    add("Best validation value so far against queries (mean ± std over seeds)",
        plots.plot_curves(results, fig_dir / "best_so_far.png", order=order))
    if None not in optima:
        which = f"optimum {next(iter(optima)):.4g}" if len(optima) == 1 else "each seed's optimum"
        add(f"Validation regret against queries ({which}; symmetric-log scale)",
            plots.plot_curves(results, fig_dir / "regret.png", metric="regret", order=order))
    if any(t is not None for r in results.values() for t in r.get("test_of_best", [])):
        add("Test value of the best-so-far architecture (chosen by validation) against queries",
            plots.plot_curves(results, fig_dir / "test_of_best.png", metric="test_of_best", order=order))
    if any(c != 1.0 for r in results.values() for c in r.get("costs", [])):
        add("Best validation value so far against cumulative cost (equal compute)",
            plots.plot_curves(results, fig_dir / "best_vs_cost.png", x="cost", order=order))
    traced = [r for r in results.values() if r.get("masses")]
    if traced:
        first = min(traced, key=lambda r: (order.index(r["label"]) if r["label"] in order else len(order),
                                           r.get("seed") or 0))
        space = _space(config)
        cell = getattr(space, "cell_hash", None)  # strings of one network (NB201: one pruned cell) summed
        what = "network" if cell is not None else "architecture"
        add(f"Mass per {what} over time ({first['label']}, seed {first.get('seed')})",
            plots.plot_mass(first["masses"], fig_dir / "mass.png", group=cell,
                            title=f"mass per {what}: {first['label']}, seed {first.get('seed')}"))
        neighbours = None if space is None else space.mutations
        values = dict(zip(first["archs"], first["values"]))
        add(f"Architectures evaluated by {first['label']} (seed {first.get('seed')}), node area = final mass; edges: "
            f"mutation neighbours",
            plots.plot_graph_mass(first["masses"], fig_dir / "graph_mass.png", neighbours=neighbours, values=values))
    return out


def _space(config: Config):
    try:
        from .config import import_plugins

        import_plugins(config.plugins)
        bench = build_benchmark(config.benchmark.name, config.benchmark.options, seed=config.search.seeds[0])
        return bench.space
    except Exception:  # noqa: BLE001 - the figures are drawn without the space's graph / cells then
        return None


def write_report(run: RunDir | str | Path, config: Config | None = None, summary: dict[str, Any] | None = None,
                 plots: bool = True) -> Path:
    """Write ``report.md`` (and the figures) for a run directory; return its path."""
    run = run if isinstance(run, RunDir) else RunDir.open(run)
    config = config or run.config()
    results = load_trial_results(run)
    stored = run.summary() or {}
    summary = summary or stored
    if not summary or set(summary.get("trials", {})) != set(results):
        summary = {**stored, **summarise(config, results)}
    figures = make_figures(run, config, results) if plots else []

    milestones = summary["milestones"]
    optimum = summary.get("optimum")
    has_opt = summary.get("has_optimum", optimum is not None)
    lines = [f"# {config.name}", ""]
    if config.description:
        lines += [config.description, ""]
    n_partial = sum(1 for r in results.values() if r.get("partial"))
    lines += [
        f"- benchmark: `{config.benchmark.name}` {json.dumps(config.benchmark.options) if config.benchmark.options else ''}",
        f"- budget: {config.search.budget} queries per trial (batches of {config.search.batch_size}); "
        f"seeds: {config.search.seeds}",
        "- methods: " + ", ".join(f"`{m.label}` ({m.optimiser}{', ' + json.dumps(m.options) if m.options else ''})"
                                    for m in config.methods),
        f"- config fingerprint: `{config.fingerprint()[:16]}`; resolved config: [config.toml](config.toml)",
    ]
    if "wall_time_s" in summary:
        sessions = summary.get("wall_time_sessions_s")
        extra = f" over {len(sessions)} sessions" if sessions and len(sessions) > 1 else ""
        total = sum(sessions) if sessions else summary["wall_time_s"]
        lines.append(f"- wall time: {total:.1f} s{extra} ({summary.get('executor', '?')} executor, "
                     f"workers = {summary.get('workers', '?')})")
    if optimum is not None:
        lines.append(f"- known optimum (best validation value): {optimum:.4f}")
    if n_partial:
        lines.append(f"- **{n_partial} trial(s) unfinished** — numbers below include their partial traces")
    lines.append("")

    head = ["method", "trials"] + [f"best val @{q}" for q in milestones]
    if has_opt:
        head += [f"regret @{q}" for q in milestones] + ["found optimum"]
    head += ["test of best (final)", "test of recommendation", "cost", "time / trial (s)"]
    lines += ["## Results (mean ± std over seeds)", "", "| " + " | ".join(head) + " |",
              "|" + "---|" * len(head)]
    for label, m in summary["methods"].items():
        row = [f"`{label}`", str(m["trials"])]
        row += [_fmt(m["milestones"][str(q)]["best"]) for q in milestones]
        if has_opt:
            row += [_fmt(m["milestones"][str(q)]["regret"], 3) for q in milestones]
            row.append(f"{m['final']['found_optimum']}/{m['trials']}")
        row += [_fmt(m["final"]["test_of_best"]), _fmt(m["final"]["test_of_recommendation"]),
                _fmt(m["final"]["cost"], 1), _fmt(m["final"]["wall_time_s"], 1)]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Values are the benchmark's validation metric (higher is better); the test value is reported for "
                  "the architecture a method would pick by validation, never searched on.", ""]
    if figures:
        lines += ["## Figures", "", "| figure | file |", "|---|---|"]
        lines += [f"| {cap} | [{Path(p).name}]({p}) |" for cap, p in figures]
        lines.append("")
        for cap, p in figures:
            lines += [f"### {cap}", "", f"![{cap}]({p})", ""]
    path = run.path / "report.md"
    atomic_write(path, "\n".join(lines))
    return path
