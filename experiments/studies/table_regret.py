"""Table regret of each method's *recommendation* in a run on ``digits-nb201`` (the main job's score).

    sdot-nas run experiments/configs/main.toml
    python -m experiments.studies.table_regret runs/main          # -> runs/main/table_regret.{md,json,png}
    python -m experiments.studies.table_regret runs/a runs/b --against hotnas evolution --out results/ab

For every trial, after each query q the run logged the optimiser's recommendation r_q (its own answer:
the best value seen for HOTNAS / evolution / random search, the flow's pick for the supernet flow).
Its table regret is ``optimum - table_val(r_q)``: ``optimum`` the best mean validation accuracy over
the search space, ``table_val`` the mean validation over the table's seeds — no retraining noise. The
cumulative cost after query q is the sum of the logged costs (epochs). Reported: mean ± standard error
over seeds at the milestones (default 25 / 50 / 100 % of the budget), and a plot of regret against
training epochs (mean, ± s.e. band) per method. Several run directories (same benchmark options and
budget, e.g. the same trial seeds run in two batches) are read as one: a label in two of them must not
share a seed. ``--against LABEL ...`` adds the **paired differences** of every other method minus LABEL on
the seeds both have (mean ± s.e. of the per-seed differences, :func:`paired`). For a flow, the number of
distinct cells its particles held at the query times (from the ``masses`` of its logged steps) is
reported too (:func:`cells_held`): how much of the space it explored; and the table regret of the best
architecture they held (:func:`best_held_regret`): what a noise-free choice among them would score; and
the mass-weighted table regret of the particles at the first and last logged query (:func:`mass_regret`):
where the flow's potential moved its mass, against the mean and median regret of a uniformly drawn string;
and the fraction of the particles on the most populated network at the last logged query
(:func:`top_network_mass`: 1 when the population has collapsed onto one network).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from experiments.rundir import RunDir, load_trial_results
from experiments.studies.common import describe


def _bench(run: RunDir):
    from hotnas.benchmarks import get_benchmark

    from experiments.config import load_config

    cfg = load_config(run.path / "config.toml")
    if cfg.benchmark.name != "digits-nb201":
        raise ValueError(f"{run.path}: benchmark {cfg.benchmark.name!r}; table regret needs 'digits-nb201'")
    return get_benchmark("digits-nb201", **cfg.benchmark.options), cfg


def trial_regrets(result: dict[str, Any], bench: Any) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative epochs (Q,), table regret of the recommendation after each query (Q,))."""
    cost = np.cumsum([float(c) for c in result["costs"]])
    reg = np.array([math.nan if r is None else bench.regret(r) for r in result["recommendations"]])
    return cost, reg


def logged_masses(events_path: Path) -> list[dict[str, float]] | None:
    """The particles' masses (architecture -> fraction) at each logged query time (the ``masses`` of a flow's
    ``step`` events, in order); None for a trial that logs no masses (not a flow)."""
    if not events_path.exists():
        return None
    out: list[dict[str, float]] = []
    for line in events_path.read_text().splitlines():
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill
            continue
        if ev.get("kind") == "step" and ev.get("masses"):
            out.append({a: float(m) for a, m in ev["masses"].items()})
    return out or None


def held_archs(events_path: Path | None, masses: list[dict[str, float]] | None = None) -> set[str] | None:
    """The architectures the particles sat on at the logged query times (:func:`logged_masses` of
    ``events_path``, or ``masses`` when given, already read); None for a trial that logs no masses (not a flow)."""
    masses = logged_masses(events_path) if masses is None else masses
    return None if masses is None else {a for m in masses for a in m}


def mass_regret(masses: dict[str, float], bench: Any) -> float:
    r"""Mass-weighted table regret of the particles at one query time, :math:`\sum_g \rho(g)\, r(g) / \sum_g \rho(g)`:
    where the flow's potential has moved its mass (to compare with a uniformly drawn string's regret)."""
    tot = sum(masses.values())
    return sum(m * bench.regret(a) for a, m in masses.items()) / tot


def top_network_mass(masses: dict[str, float], cell: Any) -> float:
    """The fraction of the particles on the most populated network at one query time (strings of one network
    summed by ``cell``, e.g. the space's ``cell_hash``): 1 when the population has collapsed onto one network."""
    from experiments.plots import mass_by

    by = mass_by(masses, cell)
    return max(by.values()) / sum(by.values())


def cells_held(events_path: Path) -> int | None:
    """Distinct cells (NB201 computational graphs) the particles sat on at the logged query times
    (:func:`held_archs`); None for a trial that logs no masses (not a flow)."""
    return _n_cells(held_archs(events_path))


def best_held_regret(events_path: Path, bench: Any) -> float | None:
    """Table regret of the best architecture the particles held (:func:`held_archs`): what a noise-free choice
    among them would score — the ceiling of a flow's retraining phase; None for a trial that is not a flow."""
    return _best_regret(held_archs(events_path), bench)


def _n_cells(archs: set[str] | None) -> int | None:
    from hotnas.spaces.nb201 import NB201Space

    if archs is None:
        return None
    space = NB201Space()
    return len({space.cell_hash(a) for a in archs})


def _best_regret(archs: set[str] | None, bench: Any) -> float | None:
    return None if archs is None else min(bench.regret(a) for a in archs)


def paired(regrets: dict[str, dict[int, np.ndarray]], ref: str, query: int) -> dict[str, dict[str, Any]]:
    """Per label other than ``ref``: the mean ± s.e. (and n) over the seeds both ran to ``query`` queries of
    that label's regret after query ``query`` minus ``ref``'s. ``regrets``: label -> seed -> regret per query (Q,)."""
    if ref not in regrets:
        raise ValueError(f"no method labelled {ref!r} to pair against; labels: {sorted(regrets)}")
    out = {}
    for label, by_seed in regrets.items():
        if label == ref:
            continue
        seeds = sorted(s for s in by_seed if s in regrets[ref] and len(by_seed[s]) >= query
                       and len(regrets[ref][s]) >= query)
        mean, se, n = describe([by_seed[s][query - 1] - regrets[ref][s][query - 1] for s in seeds], "se")
        out[label] = {"mean": mean if n else None, "se": se if n > 1 else None, "n": n}
    return out


def summarise(run_path: str | Path | list[str | Path], fractions=(0.25, 0.5, 1.0),
              against: tuple[str, ...] = ()) -> dict[str, Any]:
    paths = [run_path] if isinstance(run_path, (str, Path)) else list(run_path)
    per_method: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    by_seed: dict[str, dict[int, np.ndarray]] = {}
    cells: dict[str, list[int]] = {}
    best_held: dict[str, list[float]] = {}
    mass_first: dict[str, list[float]] = {}
    mass_last: dict[str, list[float]] = {}
    top_last: dict[str, list[float]] = {}
    setting = None
    for path in paths:
        run = RunDir.open(path)
        bench, cfg = _bench(run)
        budget = cfg.search.budget
        if setting is None:
            setting = (dict(cfg.benchmark.options), budget)
        elif setting != (dict(cfg.benchmark.options), budget):
            raise ValueError(f"{path}: benchmark options / budget {(dict(cfg.benchmark.options), budget)} differ from "
                             f"the first run's {setting}; table regrets of different settings are not pooled")
        for tid, res in load_trial_results(run).items():
            label, _, seed = tid.rpartition("__seed")
            label = res.get("label", label)
            cost, reg = trial_regrets(res, bench)
            seed = int(res.get("seed", seed))
            if seed in by_seed.setdefault(label, {}):
                raise ValueError(f"{path}: {label} seed {seed} is in two of the runs {paths}")
            by_seed[label][seed] = reg
            per_method.setdefault(label, []).append((cost, reg))
            masses = logged_masses(run.path / "trials" / tid / "events.jsonl")  # the log is read once
            if masses is not None:
                archs = held_archs(None, masses)
                cells.setdefault(label, []).append(_n_cells(archs))
                best_held.setdefault(label, []).append(_best_regret(archs, bench))
                mass_first.setdefault(label, []).append(mass_regret(masses[0], bench))
                mass_last.setdefault(label, []).append(mass_regret(masses[-1], bench))
                top_last.setdefault(label, []).append(
                    top_network_mass(masses[-1], getattr(bench.space, "cell_hash", bench.space.canonical)))
    out: dict[str, Any] = {"optimum": bench.optimum, "budget": budget, "fractions": list(fractions), "methods": {},
                           "paired": {}}
    for ref in against:
        out["paired"][ref] = {str(f): paired(by_seed, ref, max(1, round(f * budget))) for f in fractions}
    for label, trials in per_method.items():
        row = {}
        for f in fractions:
            q = max(1, round(f * budget))
            mean, se, n = describe([reg[q - 1] for _, reg in trials if len(reg) >= q], "se")
            epochs = float(np.mean([c[q - 1] for c, _ in trials if len(c) >= q])) if n else None
            row[str(f)] = {"query": q, "epochs": epochs, "mean": mean if n else None, "se": se if n > 1 else None,
                           "n": n}
        if label in cells:
            mean, se, n = describe(cells[label], "se")
            row["cells_held"] = {"mean": mean, "se": se if n > 1 else None, "n": n}
            mean, se, n = describe(best_held[label], "se")
            row["best_held_regret"] = {"mean": mean, "se": se if n > 1 else None, "n": n}
            for key, vals in (("mass_regret_first", mass_first[label]), ("mass_regret_last", mass_last[label]),
                              ("top_network_mass_last", top_last[label])):
                mean, se, n = describe(vals, "se")
                row[key] = {"mean": mean, "se": se if n > 1 else None, "n": n}
        out["methods"][label] = row
    if cells:  # a uniformly drawn string's regret, for the mass-weighted regrets
        every = np.array([bench.regret(a) for a in bench.space.enumerate()])
        out["uniform_regret"] = {"mean": float(every.mean()), "median": float(np.median(every))}
    out["_curves"] = {k: [(c.tolist(), r.tolist()) for c, r in v] for k, v in per_method.items()}
    return out


def markdown(s: dict[str, Any]) -> str:
    fr = s["fractions"]
    head = "| method | " + " | ".join(f"regret @ {int(f * 100)} % (q {s['methods'][next(iter(s['methods']))][str(f)]['query']})"
                                     for f in fr) + " |"
    lines = [f"Table regret (percentage points of validation accuracy; optimum {s['optimum']:.2f} %), "
             f"mean ± s.e. over seeds", "", head, "|" + "---|" * (len(fr) + 1)]
    for label, row in sorted(s["methods"].items(), key=lambda kv: kv[1][str(fr[-1])]["mean"] or 0):
        cells = []
        for f in fr:
            c = row[str(f)]
            cells.append("—" if c["mean"] is None else f"{c['mean']:.2f} ± {c['se'] or 0:.2f} (n={c['n']})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    held = {k: v["cells_held"] for k, v in s["methods"].items() if "cells_held" in v}
    if held:
        lines += ["", "Distinct cells the particles held at the query times (flows; mean ± s.e. over seeds): " + "; ".join(
            f"{k} {c['mean']:.1f} ± {c['se'] or 0:.1f}" for k, c in sorted(held.items()))]
        lines += ["", "Table regret of the best architecture the particles held (a noise-free choice among them: "
                  "the ceiling of the retraining phase): " + "; ".join(
                      f"{k} {s['methods'][k]['best_held_regret']['mean']:.2f} ± {s['methods'][k]['best_held_regret']['se'] or 0:.2f}"
                      for k in sorted(held))]
        u = s.get("uniform_regret")
        lines += ["", "Mass-weighted table regret of the particles at the first / last logged query (where the flow's "
                  "potential moved its mass" + (f"; a uniformly drawn string: mean {u['mean']:.2f}, median {u['median']:.2f}"
                                                 if u else "") + "): " + "; ".join(
                      f"{k} {s['methods'][k]['mass_regret_first']['mean']:.2f} -> "
                      f"{s['methods'][k]['mass_regret_last']['mean']:.2f} ± {s['methods'][k]['mass_regret_last']['se'] or 0:.2f}"
                      for k in sorted(held))]
        lines += ["", "Fraction of the particles on the most populated network at the last logged query (1: the "
                  "population has collapsed onto one network): " + "; ".join(
                      f"{k} {s['methods'][k]['top_network_mass_last']['mean']:.2f} ± "
                      f"{s['methods'][k]['top_network_mass_last']['se'] or 0:.2f}" for k in sorted(held))]
    for ref, per_f in s.get("paired", {}).items():
        lines += ["", f"Paired differences, method minus {ref} (same seeds; negative: lower regret than {ref}), "
                  "mean ± s.e.", "", "| method | " + " | ".join(f"@ {int(f * 100)} %" for f in fr) + " |",
                  "|" + "---|" * (len(fr) + 1)]
        for label in sorted(per_f[str(fr[-1])], key=lambda k: per_f[str(fr[-1])][k]["mean"] or 0):
            cells = []
            for f in fr:
                c = per_f[str(f)][label]
                cells.append("—" if c["mean"] is None else f"{c['mean']:+.2f} ± {c['se'] or 0:.2f} (n={c['n']})")
            lines.append(f"| {label} − {ref} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(s: dict[str, Any], path: Path) -> Path | None:
    try:
        from experiments.plots import pyplot, save_figure
    except ImportError:  # pragma: no cover
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, trials in sorted(s["_curves"].items()):
        grid = np.linspace(0, max(c[-1] for c, _ in trials if c), 100)
        mat = []
        for c, r in trials:
            c, r = np.asarray(c), np.asarray(r)
            idx = np.searchsorted(c, grid, side="right") - 1      # regret of the last recommendation by then
            mat.append(np.where(idx >= 0, r[np.clip(idx, 0, None)], np.nan))
        mat = np.array(mat)
        with warnings.catch_warnings():  # before a method's first recommendation the column is all NaN: no band there
            warnings.simplefilter("ignore", RuntimeWarning)
            m = np.nanmean(mat, axis=0)
            se = np.nanstd(mat, axis=0, ddof=1) / np.sqrt(np.sum(np.isfinite(mat), axis=0)) if len(mat) > 1 else 0 * m
        ax.plot(grid, m, label=label)
        ax.fill_between(grid, m - se, m + se, alpha=0.2)
    ax.set_xlabel("training epochs (accounted compute)")
    ax.set_ylabel("table regret of the recommendation (pp)")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, nargs="+", help="run directory of a digits-nb201 config (e.g. runs/main); "
                    "several are read as one")
    ap.add_argument("--against", nargs="*", default=[], metavar="LABEL",
                    help="paired differences of every method minus LABEL on shared seeds")
    ap.add_argument("--out", type=Path, default=None, help="where the outputs go (default: the first run directory)")
    args = ap.parse_args(argv)
    s = summarise(args.run, against=tuple(args.against))
    md = markdown(s)
    out = args.out or args.run[0]
    out.mkdir(parents=True, exist_ok=True)
    (out / "table_regret.md").write_text(md)
    (out / "table_regret.json").write_text(json.dumps({k: v for k, v in s.items() if k != "_curves"}, indent=1))
    png = plot(s, out / "table_regret.png")
    print(md + (f"\nplot: {png}\n" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
