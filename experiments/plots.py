"""Figures of runs and flows (matplotlib, Agg backend; imported only when a figure is drawn).

Run figures take ``results``: ``{trial_id: result dict}`` as stored in a run directory (see
:func:`experiments.rundir.load_trial_results`), grouped by method label:

- :func:`plot_curves` — best-so-far validation value, validation regret (when the optimum is known) or
  test value of the best-so-far architecture, against queries or cumulative cost: mean over seeds with
  a band of one standard deviation;
- :func:`plot_mass` — mass per architecture over time for one population/flow run;
- :func:`plot_graph_mass` — the architectures a population visited, joined when they are mutation
  neighbours, node area proportional to the final mass, colour = validation value;
- :func:`plot_density_snapshots` — densities per node of G over x (d = 1) at several times;
- :func:`pyplot`, :func:`save_figure` — the Agg pyplot and the figure writer, for studies' own figures.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["plot_curves", "plot_mass", "plot_graph_mass", "plot_density_snapshots", "by_method", "curve_matrix",
           "pyplot", "save_figure"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def by_method(results: dict[str, dict[str, Any]], order: Sequence[str] | None = None) -> dict[str, list[dict]]:
    """Group trial results by method label (in ``order`` when given), seeds sorted."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for res in results.values():
        groups[res.get("label", res.get("method"))].append(res)
    labels = [lab for lab in (order or []) if lab in groups] + sorted(set(groups) - set(order or []))
    return {lab: sorted(groups[lab], key=lambda r: (r.get("seed") is None, r.get("seed"))) for lab in labels}


def curve_matrix(runs: list[dict], key: str, length: int) -> np.ndarray:
    """(n_runs, length) array of ``run[key]`` per query; runs that stopped early are extended with
    their last value (a best-so-far stays), shorter ones that never started are NaN."""
    out = np.full((len(runs), length), np.nan)
    for i, r in enumerate(runs):
        v = np.array([np.nan if x is None else x for x in r.get(key, [])], dtype=float)[:length]
        if v.size:
            out[i, :v.size] = v
            out[i, v.size:] = v[-1]
    return out


def _cost_grid(runs: list[dict], key: str, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Step-interpolate ``run[key]`` onto a common grid of cumulative cost."""
    cums = [np.cumsum(r["costs"]) for r in runs if r.get("costs")]
    top = min(c[-1] for c in cums) if cums else 1.0
    grid = np.linspace(0, top, n)
    vals = np.full((len(runs), n), np.nan)
    for i, r in enumerate(runs):
        if not r.get("costs"):
            continue
        c = np.cumsum(r["costs"])
        v = np.array([np.nan if x is None else x for x in r[key]], dtype=float)
        idx = np.searchsorted(c, grid, side="right") - 1
        vals[i] = np.where(idx >= 0, v[np.clip(idx, 0, len(v) - 1)], np.nan)
    return grid, vals


def plot_curves(results: dict[str, dict[str, Any]], path: str | Path, *, metric: str = "best_so_far",
                x: str = "queries", order: Sequence[str] | None = None, title: str = "",
                optimum: float | None = None) -> Path:
    """Mean over seeds of a per-query trace, with a +-1 std band; ``metric``: ``best_so_far``,
    ``regret`` (against ``optimum``, by default each run's own), ``test_of_best``; ``x``: ``queries`` or ``cost``."""
    plt = _plt()
    groups = by_method(results, order)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    key = "best_so_far" if metric == "regret" else metric
    length = max((len(r.get(key, [])) for rs in groups.values() for r in rs), default=0)
    focus: list[float] = []            # band values after the first fifth: the y-range shown
    for label, runs in groups.items():
        if x == "cost":
            xs, M = _cost_grid(runs, key)
        else:
            M = curve_matrix(runs, key, length)
            xs = np.arange(1, length + 1)
        if metric == "regret":   # each run against its own benchmark's optimum (the same on a table)
            opt = np.array([optimum if optimum is not None else r.get("optimum", np.nan) for r in runs], float)
            M = np.clip(opt[:, None] - M, 0.0, None)
        with np.errstate(all="ignore"), _quiet():
            mean, std = np.nanmean(M, axis=0), np.nanstd(M, axis=0)
        band_lo = np.clip(mean - std, 0.0, None) if metric == "regret" else mean - std
        start = len(xs) // 5
        focus += [float(np.nanmin(band_lo[start:], initial=np.inf)), float(np.nanmax(mean + std, initial=-np.inf))]
        line, = ax.plot(xs, mean, label=f"{label} (n={len(runs)})", lw=1.8)
        ax.fill_between(xs, band_lo, mean + std, color=line.get_color(), alpha=0.22, lw=0)
    names = {"best_so_far": "best validation value so far", "regret": "validation regret (optimum - best so far)",
             "test_of_best": "test value of the best-so-far architecture"}
    ax.set_ylabel(names.get(metric, metric))
    ax.set_xlabel("queries" if x == "queries" else "cumulative cost (benchmark units, e.g. epochs)")
    if metric == "regret":
        ax.set_yscale("symlog", linthresh=0.01)
        ax.set_ylim(bottom=0.0)
    else:      # the first queries (random initial designs) would squash the curves that matter
        lo, hi = min(focus, default=np.nan), max(focus, default=np.nan)
        if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
            ax.set_ylim(lo - 0.15 * (hi - lo), hi + 0.05 * (hi - lo))
    ax.set_title(title or f"{names.get(metric, metric)}: mean ± std over seeds", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *a):
        self._w.__exit__(*a)


def mass_by(masses: dict[str, float], key: Callable[[str], str]) -> dict[str, float]:
    """The masses of the architectures that ``key`` maps to one value (e.g. one network) summed."""
    out: dict[str, float] = defaultdict(float)
    for a, v in masses.items():
        out[key(a)] += v
    return dict(out)


def group_masses(trace: list[tuple[int, dict[str, float]]], group: Callable[[str], str]
                 ) -> tuple[list[tuple[int, dict[str, float]]], dict[str, int]]:
    """The trace with the masses of strings that ``group`` maps to one key (e.g. one cell) summed, each group
    named by its string of largest peak mass; and per name, how many other strings it absorbed."""
    peak: dict[str, float] = defaultdict(float)
    for _, m in trace:
        for a, v in m.items():
            peak[a] = max(peak[a], v)
    members: dict[str, list[str]] = defaultdict(list)
    for a in peak:
        members[group(a)].append(a)
    name = {k: max(v, key=lambda a: (peak[a], a)) for k, v in members.items()}
    merged = {name[k]: len(v) - 1 for k, v in members.items()}
    return [(s, mass_by(m, lambda a: name[group(a)])) for s, m in trace], merged


def plot_mass(trace: list[tuple[int, dict[str, float]]], path: str | Path, *, top: int = 8, title: str = "",
              short: Callable[[str], str] | None = None, group: Callable[[str], str] | None = None) -> Path:
    """Stacked mass per architecture against queries; the ``top`` architectures by peak mass, the rest
    as "other". ``trace``: ``[(query_index, {arch: mass})]``. ``group`` (e.g. a space's ``cell_hash``) sums
    the strings of one network first: a label then reads "string (+k)" for a network that k more strings name."""
    plt = _plt()
    short = short or _shorten
    merged: dict[str, int] = {}
    if group is not None:
        trace, merged = group_masses(trace, group)
    label = (lambda a: short(a) + (f" (+{merged[a]})" if merged.get(a) else ""))
    steps = np.array([s + 1 for s, _ in trace])
    peak: dict[str, float] = defaultdict(float)
    for _, m in trace:
        for a, v in m.items():
            peak[a] = max(peak[a], v)
    keep = sorted(peak, key=peak.get, reverse=True)[:top]
    rows = [[m.get(a, 0.0) for _, m in trace] for a in keep]
    totals = np.array([sum(m.values()) for _, m in trace])
    other = totals - np.sum(rows, axis=0) if rows else totals
    fig, ax = plt.subplots(figsize=(7.2, 4.2))
    ax.stackplot(steps, *rows, np.clip(other, 0, None), labels=[label(a) for a in keep] + ["other"], alpha=0.85)
    ax.set_xlabel("queries")
    ax.set_ylabel("mass (fraction of the population)")
    ax.set_title(title or "mass per architecture over time", fontsize=10)
    ax.set_xlim(steps[0], steps[-1]) if len(steps) > 1 else None
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(fig, path)


_NB201_ABBREV = {"none": "-", "skip_connect": "s", "nor_conv_1x1": "c1", "nor_conv_3x3": "c3", "avg_pool_3x3": "p3"}


def _shorten(arch: str, width: int = 48) -> str:
    """A short label: NB201 strings as their operations per node (``c3/c3 p3/s c3 s``: c3/c1 = 3x3/1x1
    conv, p3 = 3x3 avg pool, s = skip, - = none), anything else cut at ``width``."""
    if arch.startswith("|") and "~" in arch:
        nodes = [n.strip("|") for n in arch.split("+")]
        ops = [[_NB201_ABBREV.get(e.split("~")[0], e.split("~")[0]) for e in n.split("|") if e] for n in nodes]
        if all(ops):
            return "/".join(" ".join(o) for o in ops)
    return arch if len(arch) <= width else arch[: width - 3] + "..."


def plot_graph_mass(trace: list[tuple[int, dict[str, float]]], path: str | Path, *,
                    neighbours: Callable[[str], list[str]] | None = None, values: dict[str, float] | None = None,
                    title: str = "", max_nodes: int = 60) -> Path:
    """The architectures a population visited or evaluated, as a graph: edges join mutation neighbours
    (``neighbours(arch)``), node area is proportional to the final mass (small dots: no mass left),
    colour is the validation value when known (``values``: the evaluated architectures). ``trace``: ``[(query_index, {arch: mass})]``."""
    import networkx as nx

    plt = _plt()
    final = trace[-1][1] if trace else {}
    peak: dict[str, float] = defaultdict(float)
    for _, m in trace:
        for a, v in m.items():
            peak[a] = max(peak[a], v)
    vals = values or {}
    candidates = set(peak) | set(vals)          # visited by particles, or evaluated (proposed)
    nodes = sorted(candidates, key=lambda a: (final.get(a, 0.0), peak.get(a, 0.0), vals.get(a, -np.inf)),
                   reverse=True)[:max_nodes]
    G = nx.Graph()
    G.add_nodes_from(nodes)
    if neighbours is not None:
        present = set(nodes)
        for a in nodes:
            for b in neighbours(a):
                if b in present and a < b:
                    G.add_edge(a, b)
    pos = nx.spring_layout(G, seed=0, k=1.5 / max(1, len(nodes)) ** 0.5)
    fig, ax = plt.subplots(figsize=(7.0, 5.6))
    sizes = [25 + 2000 * final.get(a, 0.0) for a in nodes]
    colours = [vals.get(a, np.nan) for a in nodes]
    nx.draw_networkx_edges(G, pos, ax=ax, alpha=0.35)
    sc = ax.scatter([pos[a][0] for a in nodes], [pos[a][1] for a in nodes], s=sizes, c=colours, cmap="viridis",
                    edgecolors="k", linewidths=0.5, plotnonfinite=True, zorder=3)
    if any(np.isfinite(colours)):
        fig.colorbar(sc, ax=ax, label="validation value")
    for a in nodes:
        if final.get(a, 0.0) > 0:
            ax.annotate(f"{_shorten(a, 30)} ({final[a]:.2f})", pos[a], fontsize=6, xytext=(5, 5),
                        textcoords="offset points", zorder=4)
    ax.set_title(title or f"evaluated architectures ({G.number_of_nodes()}, {G.number_of_edges()} mutation edges); "
                          f"area = final mass", fontsize=10)
    ax.set_axis_off()
    return _save(fig, path)


def plot_density_snapshots(centers: np.ndarray, densities: Sequence[np.ndarray], times: Sequence[float],
                           path: str | Path, *, node_labels: Sequence[str] | None = None, title: str = "") -> Path:
    """Densities rho(t, x, g) over a 1-d grid, one panel per node g, one line per snapshot time.

    ``centers``: (M,) or (M, 1) cell centres; ``densities``: each (K, M)."""
    plt = _plt()
    x = np.asarray(centers).reshape(-1)
    K = np.asarray(densities[0]).shape[0]
    fig, axes = plt.subplots(1, K, figsize=(3.2 * K, 3.0), sharey=True, squeeze=False)
    cmap = plt.get_cmap("viridis")
    for k in range(K):
        ax = axes[0, k]
        for j, (rho, t) in enumerate(zip(densities, times)):
            ax.plot(x, np.asarray(rho)[k], color=cmap(j / max(1, len(times) - 1)), lw=1.4, label=f"t = {t:g}")
        ax.set_title(node_labels[k] if node_labels else f"node {k}", fontsize=9)
        ax.set_xlabel("x")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("density")
    axes[0, -1].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    _plt().close(fig)
    return path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (for studies that draw their own figures)."""
    return _plt()


def save_figure(fig, path: str | Path) -> Path:
    """Lay ``fig`` out tightly, write it to ``path`` (120 dpi, parent folders created), close it; the path."""
    return _save(fig, path)
