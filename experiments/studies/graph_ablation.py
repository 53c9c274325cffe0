"""Study: does the distance behind G's weights matter to the tabular flow? (issue 19)

    python -m experiments.studies.graph_ablation                          # the study (config below), all spaces
    python -m experiments.studies.graph_ablation --smoke                  # a small pool, few seeds: checks the pipeline
    python -m experiments.studies.graph_ablation --config experiments/configs/studies/graph_ablation.toml --workers 2

The tabular flow (settings pinned in the config: N = 20, glauber, T 0.3 -> 0.03, dt 1, birth-death 1 —
the flow's defaults when this study was written; without ``--config`` it runs the flow's current defaults,
read from the optimiser) on a prebuilt graph
(:class:`hotnas.graph_builders.FixedGraph`, passed as ``graph=``) in every combination of

* **graph** — ``mutations``: the mutation graph (NB201: the 24 single-edge changes; on a table, which
  is not closed under mutation: each architecture's ``k_table`` nearest table entries in the Hamming
  distance of the space's encoding, i.e. the fewest mutations apart); ``knn``: each node's ``k_knn``
  nearest in HOTNN among *candidates* — NB201: the mutation ball of radius 2 (264 architectures; all
  15,625^2 pairs would cost about 60x more), a table: each entry's ``cand_table`` nearest entries in the
  encoding's Hamming distance — with computationally identical
  networks (d = 0) excluded, union-symmetrised; ``union``: both edge sets;
* **weights** — ``uniform`` (w = 1) or the Laplace kernel ``exp(-beta d / s)`` of a distance d in
  ``hamming``, ``tw``, ``otmann``, ``hotnn``, with s the within-row spread of d on that graph's edges and
  the weights mean-normalised (``hotnas.graph_builders`` derives both), ``beta`` in the config's grid
  (beta < 0 prefers far neighbours); and the current default ``hotnn-l0.1`` (exp(-d / 0.1), not
  normalised) on the mutation graph; ``hotnn-distinct``: uniform weights on the edges that join *different*
  networks (HOTNN d > 0; 15 % of NB201's mutation edges join computationally identical cells).

On the table spaces only the weights in ``table_weights`` are reported (compute: 2 shared cores).

Protocol: every setting runs on the *select* stream of seeds (root ``select_root``) on NB201; per
(graph, weights) the beta with the lowest mean regret at 100 queries is kept; the kept settings, the
uniform mutation graph and ``hotnn-l0.1`` then run unchanged on the disjoint *report* stream (root
``report_root``) on every space. Reported: validation regret (the table's best minus the best found)
at the checkpoints, the fraction of seeds that found the best, and the paired difference to the
uniform mutation graph (same seeds) with its standard error.

Spaces: ``nb201`` (15,625 cells, :func:`hotnas.data.load_table`), ``darts`` (the 725 DARTS genotypes)
and ``nb101`` (the 500 NB101 cells, 292 distinct after canonicalisation: duplicates take the mean of
their validation accuracies), the last two searched *within the table* (:class:`PoolSpace`). Distances
are computed once and cached under ``<out>/cache`` (NB201: 2.06 M HOTNN pairs, about 10 min of one core).
Outputs in ``--out`` (default ``results/graph_ablation``): ``table.md``, ``results.json``, ``delta100.png``.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments.studies.common import load_config as load_study_config
from experiments.studies.common import optimiser_defaults, study_parser, summarise, worker_cache, write_study

DEFAULTS: dict[str, Any] = dict(
    spaces=["nb201", "darts", "nb101"], budget=200, checkpoints=[50, 100, 200],
    select_root=1, select_seeds=20, report_root=0, report_seeds=20, report_seeds_by_space={"darts": 20, "nb101": 20},
    select_on="nb201", select_at=100, table_weights=["uniform", "hotnn", "hotnn-distinct", "hotnn-l0.1"],
    graphs=["mutations", "knn", "union"], weights=["uniform", "hamming", "tw", "otmann", "hotnn", "hotnn-distinct"],
    betas=[-3.0, -1.0, 1.0, 3.0], betas_wide=[-1.0, 1.0], k_knn=8, k_table=8, cand_table=64, legacy_lengthscale=0.1,
    flow=optimiser_defaults("flow", "n_particles", "law", "temperature", "dt", "birth_death"),
)
SMOKE: dict[str, Any] = dict(spaces=["smoke"], budget=40, checkpoints=[25, 40], select_seeds=3, report_seeds=3,
                             select_on="smoke", select_at=25, weights=["uniform", "hotnn", "hotnn-distinct"], betas=[-1.0, 1.0],
                             betas_wide=[1.0],
                             k_knn=4, k_table=4, cand_table=20)
METHODS = ("hamming", "tw", "otmann", "hotnn")

_W: dict[str, Any] = {}  # the study's state (config, prepared spaces), set before the workers fork


# ------------------------------------------------------------------------------------------ spaces
def _log(msg: str) -> None:
    print(f"[graph_ablation {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def load_space(name: str) -> tuple[Any, list[str], np.ndarray, bool]:
    """(space, node architectures, validation values, closed under mutation?) of a shipped space."""
    from hotnas.data import load_table
    from hotnas.graph_builders import PoolSpace
    from hotnas.spaces import get_space

    if name == "nb201":
        archs, val = load_table("nb201")
        return get_space("nb201"), archs, np.asarray(val, float), True
    if name == "smoke":  # 80 NB201 cells as a table: the pipeline at a small cost
        archs, val = load_table("nb201")
        pick = np.random.default_rng(0).choice(len(archs), size=80, replace=False)
        base = get_space("nb201")
        return PoolSpace(base, [archs[k] for k in pick], name="nb201-pool80"), [archs[k] for k in pick], \
            np.asarray(val, float)[pick], False
    if name not in ("darts", "nb101"):
        raise ValueError(f"unknown space {name!r}; expected nb201, darts, nb101 or smoke")
    base = get_space(name)
    archs, val = load_table(name)
    groups: dict[str, list[float]] = {}
    for a, v in zip(archs, val):
        groups.setdefault(base.canonical(a), []).append(float(v))
    nodes = list(groups)
    return PoolSpace(base, nodes, name=f"{name}-table"), nodes, np.array([np.mean(groups[a]) for a in nodes]), False


def prepare(name: str, cfg: dict[str, Any], cache: Path) -> dict[str, Any]:
    """Edge sets of the three graphs and every distance on their edges (cached on disk)."""
    from hotnas.distances.engine import PairwiseDistances
    from hotnas.graph_builders import (cached_pair_distances, encoding_knn_pairs, knn_select, mutation_pairs,
                                       pairs_digest, union_pairs)

    space, archs, val, closed = load_space(name)
    base = getattr(space, "base", space)
    n = len(archs)
    t0 = time.perf_counter()
    if closed:
        mut = mutation_pairs(space, archs, 1)
        cand = union_pairs(mut, mutation_pairs(space, archs, 2))
    else:
        mut = encoding_knn_pairs(base, archs, cfg["k_table"])
        # HOTNN candidates on a table: each entry's cand_table nearest entries in encoding Hamming (the
        # analogue of NB201's radius-2 ball; all pairs of DARTS-725 cost 262k HOTNN pairs, an hour here)
        cand = encoding_knn_pairs(base, archs, cfg["cand_table"])
    engines = {m: PairwiseDistances(base, method=m, n_jobs=1) for m in METHODS}
    _log(f"{name}: {n} nodes, {len(mut[0])} mutation edges, {len(cand[0])} HOTNN candidate pairs")
    # chunks bound the memory of the batched cell solves (DARTS: two cells of up to 11 nodes per network)
    dc = cached_pair_distances(engines["hotnn"], archs, *cand, path=cache / f"{name}_hotnn_{pairs_digest(*cand)}.npz",
                               log=_log, chunk=200_000 if closed else 5_000)
    keep = knn_select(*cand, dc, n, cfg["k_knn"], min_distance=0.0)
    knn = (cand[0][keep], cand[1][keep])
    edges = {"mutations": mut, "knn": knn, "union": union_pairs(mut, knn)}
    allp = edges["union"]
    dist = {}
    for m in METHODS:
        if m == "hotnn":
            key = cand[0] * n + cand[1]
            pos = np.searchsorted(key, allp[0] * n + allp[1])
            assert np.all(key[pos] == allp[0] * n + allp[1]), "union edges must be HOTNN candidates"
            dall = dc[pos]
        else:
            dall = cached_pair_distances(engines[m], archs, *allp, path=cache / f"{name}_{m}_{pairs_digest(*allp)}.npz")
        akey = allp[0] * n + allp[1]
        dist[m] = {g: dall[np.searchsorted(akey, e[0] * n + e[1])] for g, e in edges.items()}
    _log(f"{name}: prepared in {time.perf_counter() - t0:.0f} s; edges " +
         ", ".join(f"{g} {len(e[0])}" for g, e in edges.items()))
    return dict(name=name, space=space, archs=archs, val=val, edges=edges, dist=dist, n=n)


def graph_stats(P: dict[str, Any]) -> dict[str, Any]:
    """Per graph: mean degree, spread s of each distance, HOTNN zeros, and the rank correlation between
    d and |value difference| on its edges (where the distance carries information about values)."""
    from scipy.stats import spearmanr

    from hotnas.graph_builders import within_row_spread

    out = {}
    for g, (i, j) in P["edges"].items():
        dv = np.abs(P["val"][i] - P["val"][j])
        row = {"edges": int(len(i)), "mean_degree": 2 * len(i) / P["n"]}
        for m in METHODS:
            d = P["dist"][m][g]
            row[f"s_{m}"] = within_row_spread(i, j, d, P["n"])
            rho = spearmanr(d, dv).statistic if np.ptp(d) > 0 else float("nan")
            row[f"rho_{m}"] = float(rho)
        row["hotnn_zero"] = float(np.mean(P["dist"]["hotnn"][g] <= 0))
        out[g] = row
    return out


def gain_by_distance(P: dict[str, Any], graph: str = "mutations",
                     bands: tuple[float, ...] = (0.0, 0.5, 0.9, 0.99, 1.0)) -> list[dict[str, Any]]:
    """Where HOTNN carries information a proposal can use: over the directed edges g -> g' of ``graph``,
    by the value quantile of g (``bands``) and the tercile of the row-centred distance
    d(g, g') - mean_{h ~ g} d(g, h) (near / middle / far), and for d = 0: P(val(g') > val(g)) and
    E[(val(g') - val(g))_+] (accuracy points)."""
    i, j = P["edges"][graph]
    d = P["dist"]["hotnn"][graph]
    n, val = P["n"], P["val"]
    src, dst, dd = np.r_[i, j], np.r_[j, i], np.r_[d, d]
    gain = val[dst] - val[src]
    q = np.argsort(np.argsort(val)) / n
    cnt = np.bincount(src, minlength=n)
    mean = np.bincount(src, weights=dd, minlength=n) / np.maximum(cnt, 1)
    dc = dd - mean[src]
    rows = []
    for lo, hi in zip(bands[:-1], bands[1:]):
        sel = (q[src] >= lo) & ((q[src] < hi) if hi < 1 else (q[src] <= hi))
        if not sel.any():
            continue
        cuts = np.quantile(dc[sel], [1 / 3, 2 / 3])
        ter = np.digitize(dc, cuts)
        row: dict[str, Any] = {"band": [lo, hi], "edges": int(sel.sum())}
        for t, name in enumerate(("near", "middle", "far")):
            m = sel & (ter == t)
            row[name] = [float(np.mean(gain[m] > 0)), float(np.mean(np.maximum(gain[m], 0)))] if m.any() else None
        z = sel & (dd <= 0)
        row["d=0"] = [float(np.mean(gain[z] > 0)), float(np.mean(np.maximum(gain[z], 0))), int(z.sum())] if z.any() else None
        rows.append(row)
    return rows


def gain_table(space: str, rows: list[dict[str, Any]]) -> str:
    f = lambda v: "–" if v is None else f"{v[0]:.2f} / {v[1]:.2f}"
    lines = [f"P(improve) / E[gain+] over {space}'s mutation edges by value quantile of g and row-centred HOTNN tercile:",
             "", "| val(g) quantile | near | middle | far | d = 0 |", "|---|---|---|---|---|"]
    for r in rows:
        z = r["d=0"]
        lines.append(f"| {r['band'][0]:g}–{r['band'][1]:g} | {f(r['near'])} | {f(r['middle'])} | {f(r['far'])} | "
                     f"{'–' if z is None else f'{z[0]:.2f} / {z[1]:.3f} (n={z[2]})'} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ runs
def make_graph(P: dict[str, Any], graph: str, weights: str, beta: float, cfg: dict[str, Any]):
    from hotnas.graph_builders import FixedGraph, build_fixed_graph

    i, j = P["edges"][graph]
    label = f"{graph}/{weights}/{beta:g}"
    if weights == "uniform":
        return build_fixed_graph(P["space"], P["archs"], i, j, None, label=label)
    if weights == "hotnn-distinct":  # w = 1[d_HOTNN > 0]: edges between computationally identical networks dropped
        keep = P["dist"]["hotnn"][graph] > 0
        return build_fixed_graph(P["space"], P["archs"], i[keep], j[keep], None, label=label)
    d = P["dist"]["hotnn" if weights == "hotnn-l0.1" else weights][graph]
    if weights == "hotnn-l0.1":  # the flow's default weights: exp(-d / 0.1), not normalised
        return FixedGraph(P["space"], P["archs"], i, j, np.maximum(np.exp(-d / cfg["legacy_lengthscale"]), 1e-12),
                          label=label)
    return build_fixed_graph(P["space"], P["archs"], i, j, d, beta=beta, label=label)


def run_flow(P: dict[str, Any], G: Any, stream: Any, cfg: dict[str, Any]) -> np.ndarray:
    """Regret after each query of one flow run on the table (shape (budget,))."""
    from hotnas.benchmarks.base import Evaluation
    from hotnas.optimisers import get_optimiser

    flow = dict(cfg["flow"])
    flow["temperature"] = tuple(flow["temperature"]) if isinstance(flow["temperature"], list) else flow["temperature"]
    values = P.setdefault("_lookup", dict(zip(P["archs"], P["val"].tolist())))
    best_v = float(P["val"].max())
    opt = get_optimiser("flow", P["space"], seed=np.random.default_rng(stream), budget=cfg["budget"], graph=G,
                        record_mass=False, **flow)
    best, curve = -math.inf, []
    while len(curve) < cfg["budget"]:
        asked = opt.ask(1)
        if not asked:
            break
        v = values[asked[0]]
        opt.tell([Evaluation(asked[0], v)])
        best = max(best, v)
        curve.append(best_v - best)
    curve += [curve[-1]] * (cfg["budget"] - len(curve))
    return np.array(curve)


def _task(args: tuple) -> tuple:
    space, graph, weights, beta, root, k = args
    P = _W["prepared"][space]
    key = (space, graph, weights, beta)
    G = worker_cache(("graph", *key), lambda: make_graph(P, graph, weights, beta, _W["cfg"]))
    stream = np.random.SeedSequence(root).spawn(k + 1)[k]
    return args, run_flow(P, G, stream, _W["cfg"])


def run_tasks(tasks: list[tuple], workers: int, store: Path | None = None) -> dict[tuple, np.ndarray]:
    """Run (space, graph, weights, beta, root, seed index) tasks; returns curves by task.

    With ``store`` (a JSON-lines file keyed by the task and the config's fingerprint), finished runs are
    appended as they complete and read back instead of rerun (a long study resumes where it stopped)."""
    fps = {sp_name: _fingerprint(_W["cfg"], sp_name) for sp_name in {t[0] for t in tasks}}
    done: dict[tuple, np.ndarray] = {}
    if store is not None and store.is_file():
        for line in store.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by an interrupted run
                continue
            if rec["fp"] == fps.get(rec["task"][0]):
                t = tuple(rec["task"])
                done[(t[0], t[1], t[2], float(t[3]), int(t[4]), int(t[5]))] = np.array(rec["curve"])
    todo = [t for t in tasks if t not in done]
    fh = None
    if store is not None:
        store.parent.mkdir(parents=True, exist_ok=True)
        fh = open(store, "a")
    try:
        if workers <= 1:
            it = map(_task, todo)
        else:
            pool = mp.get_context("fork").Pool(workers)
            it = pool.imap_unordered(_task, todo, chunksize=4)
        for t, c in it:
            done[t] = c
            if fh is not None:
                fh.write(json.dumps({"fp": fps[t[0]], "task": list(t), "curve": c.tolist()}) + "\n")
                fh.flush()
        if workers > 1:
            pool.close()
            pool.join()
    finally:
        if fh is not None:
            fh.close()
    return {t: done[t] for t in tasks}


def _fingerprint(cfg: dict[str, Any], space: str) -> str:
    """What determines a run's curve besides its task: budget, flow settings, graph sizes (``cand_table``
    only for the table spaces)."""
    names = ("budget", "flow", "k_knn", "k_table", "legacy_lengthscale") + (() if space == "nb201" else ("cand_table",))
    keys = {k: cfg[k] for k in names}
    return hashlib.sha1(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------ tables
def settings(cfg: dict[str, Any]) -> list[tuple[str, str, float]]:
    """The select grid: (graph, weights, beta); uniform once per graph."""
    out = []
    for g in cfg["graphs"]:
        for w in cfg["weights"]:
            betas = cfg["betas"] if g == "mutations" else cfg.get("betas_wide", cfg["betas"])
            for b in ([0.0] if w in ("uniform", "hotnn-distinct") else betas):
                out.append((g, w, float(b)))
    return out


def _entry(s: dict[str, Any]) -> dict[str, Any]:
    """One row of the report from :func:`experiments.studies.common.summarise`: n, found, ``@c`` (mean, s.e.)
    and ``d@c`` (paired difference to the uniform mutation graph, mean and s.e.) per checkpoint."""
    out: dict[str, Any] = {"n": s["n"], "found": s["found"]}
    for c in sorted(s["at"]):
        out[f"@{c}"], out[f"d@{c}"] = s["at"][c], s["paired"][c]
    return out


def _fmt(ms: tuple[float, float], sign: bool = False) -> str:
    m, s = ms
    return f"{m:+.3f} ± {s:.3f}" if sign else f"{m:.3f} ± {s:.3f}"


def report_table(space: str, rows: dict[str, dict[str, Any]], checkpoints: list[int], stats: dict[str, Any],
                 at: int) -> str:
    last = checkpoints[-1]
    head = "| graph / weights (beta) | " + " | ".join(f"@{c}" for c in checkpoints) + \
        f" | found | Δ@{at} vs uniform mutations | Δ@{last} |"
    lines = [f"**{space}**", "", head, "|" + "---|" * (len(checkpoints) + 4)]
    for label, s in rows.items():
        da = s[f"d@{at}"]
        z = da[0] / da[1] if da[1] > 0 else float("nan")
        mark = " **" if z <= -2 else ""
        lines.append(f"| {label} | " + " | ".join(_fmt(s[f"@{c}"]) for c in checkpoints) +
                     f" | {s['found']:.0%} | {_fmt(da, True)}{mark} | {_fmt(s[f'd@{last}'], True)} |")
    g = stats
    lines += ["", "graphs: " + "; ".join(f"{k} {v['edges']} edges (mean degree {v['mean_degree']:.1f}, HOTNN "
                                          f"s = {v['s_hotnn']:.3f}, rho(d_HOTNN, |Δval|) = {v['rho_hotnn']:.2f})"
                                          for k, v in g.items())]
    return "\n".join(lines)


def _label(g: str, w: str, b: float) -> str:
    return f"{g} / {w}" + ("" if w in ("uniform", "hotnn-l0.1", "hotnn-distinct") else f" ({b:+g})")


def plot(report: dict[str, dict[str, dict[str, Any]]], path: Path, at: int) -> None:
    from experiments.plots import pyplot, save_figure

    plt = pyplot()
    spaces = list(report)
    labels = [lab for lab in next(iter(report.values())) if not lab.startswith("mutations / uniform")]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(labels) * len(spaces) + 1.5))
    y = np.arange(len(labels))
    for k, sp_name in enumerate(spaces):
        nan = (np.nan, np.nan)
        m = np.array([report[sp_name].get(lab, {}).get(f"d@{at}", nan)[0] for lab in labels])
        e = np.array([report[sp_name].get(lab, {}).get(f"d@{at}", nan)[1] for lab in labels])
        ax.errorbar(m, y + 0.25 * (k - (len(spaces) - 1) / 2), xerr=2 * e, fmt="o", label=sp_name, capsize=2)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel(f"paired Δ regret @{at} vs uniform mutation graph (± 2 s.e.; < 0 is better)")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


# ------------------------------------------------------------------------------------------ main
def load_config(path: str | None, smoke: bool) -> dict[str, Any]:
    """The study's settings: :data:`DEFAULTS`, updated by the TOML at ``path`` and by :data:`SMOKE`."""
    cfg = load_study_config(path, DEFAULTS) if path is not None else \
        {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    if smoke:
        cfg.update(SMOKE)
    bad = set(cfg["weights"]) - {"uniform", "hotnn-distinct", *METHODS}
    if bad:
        raise ValueError(f"unknown weights {sorted(bad)}; expected uniform or one of {METHODS}")
    if set(cfg["graphs"]) - {"mutations", "knn", "union"}:
        raise ValueError(f"graphs must be among mutations, knn, union; got {cfg['graphs']}")
    return cfg


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = study_parser(__doc__, "an 80-cell NB201 pool, budget 40, 3 seeds (about 20 s)", config=None, workers=1,
                      out="results/graph_ablation")
    ap.add_argument("--spaces", nargs="*", default=None, help="subset of the config's spaces")
    ap.add_argument("--report-spaces", nargs="*", default=None,
                    help="run the report phase only for these spaces (stored runs; no tables written)")
    args = ap.parse_args(argv)
    cfg = load_config(args.config, args.smoke)
    if args.spaces:
        cfg["spaces"] = list(args.spaces)
    out = Path(args.out)
    t0 = time.perf_counter()
    _W["cfg"] = cfg
    _W["prepared"] = {s: prepare(s, cfg, out / "cache") for s in cfg["spaces"]}
    stats = {s: graph_stats(P) for s, P in _W["prepared"].items()}
    gains = {s: gain_by_distance(P) for s, P in _W["prepared"].items()}
    # 1) select beta per (graph, weights) on the select stream of the selection space
    sel_space = cfg["select_on"] if cfg["select_on"] in cfg["spaces"] else cfg["spaces"][0]
    grid = settings(cfg)
    tasks = [(sel_space, g, w, b, cfg["select_root"], k) for g, w, b in grid for k in range(cfg["select_seeds"])]
    _log(f"select: {len(grid)} settings x {cfg['select_seeds']} seeds on {sel_space}")
    sel = run_tasks(tasks, args.workers, out / "cache" / "runs.jsonl")
    at = cfg["select_at"]
    select_scores = {}
    for g, w, b in grid:
        c = np.stack([sel[(sel_space, g, w, b, cfg["select_root"], k)] for k in range(cfg["select_seeds"])])
        select_scores[f"{g}/{w}/{b:g}"] = float(c[:, at - 1].mean())
    chosen = []
    for g in cfg["graphs"]:
        for w in cfg["weights"]:
            opts = [(select_scores[f"{g}/{w}/{b:g}"], b) for gg, ww, b in grid if gg == g and ww == w]
            chosen.append((g, w, min(opts)[1]))
    report_settings = chosen + ([("mutations", "hotnn-l0.1", 0.0)] if "hotnn" in cfg["weights"] else [])
    # 2) report the chosen settings on the report stream of every space
    n_rep = {s: int(cfg["report_seeds_by_space"].get(s, cfg["report_seeds"])) for s in cfg["spaces"]}
    rep_spaces = [s for s in cfg["spaces"] if not args.report_spaces or s in args.report_spaces]
    per_space = {s: [t for t in report_settings if s == sel_space or t[1] in cfg["table_weights"]] for s in cfg["spaces"]}
    # a distance constant on a graph's edges (s = 0: Hamming on NB201's mutation graph) gives the uniform graph
    same = {(s, g, w, b): (g, "uniform", 0.0) for s in cfg["spaces"] for g, w, b in per_space[s]
            if w in METHODS and stats[s][g][f"s_{w}"] == 0}
    tasks = [(s, g, w, b, cfg["report_root"], k) for s in rep_spaces for g, w, b in per_space[s]
             for k in range(n_rep[s]) if (s, g, w, b) not in same]
    _log(f"report: {len(report_settings)} settings x {n_rep} seeds on {rep_spaces}")
    rep = run_tasks(tasks, args.workers, out / "cache" / "runs.jsonl")
    if set(rep_spaces) != set(cfg["spaces"]):
        _log("report runs done for " + ", ".join(rep_spaces) + "; rerun without --report-spaces for the tables")
        return {"select": select_scores, "chosen": chosen}
    report: dict[str, dict[str, dict[str, Any]]] = {}
    md = ["Regret = best validation accuracy of the table minus the best found (accuracy points), mean ± s.e. over "
          f"the seeds of root {cfg['report_root']} ({', '.join(f'{s}: {n}' for s, n in n_rep.items())}); beta chosen per (graph, weights) on "
          f"{cfg['select_seeds']} seeds of root {cfg['select_root']} ({sel_space}, regret @{at}). Δ: paired "
          "difference to the uniform mutation graph (negative = better; ** = at least 2 s.e. better).", ""]
    for s in cfg["spaces"]:
        curves = {(g, w, b): np.stack([rep[(s, *same.get((s, g, w, b), (g, w, b)), cfg["report_root"], k)]
                                       for k in range(n_rep[s])])
                  for g, w, b in per_space[s]}
        summary = summarise({_label(g, w, b): c for (g, w, b), c in curves.items()}, [*cfg["checkpoints"], at],
                            spread="se", reference=_label("mutations", "uniform", 0.0))
        report[s] = {label: _entry(e) for label, e in summary.items()}
        md += [report_table(s, report[s], cfg["checkpoints"], stats[s], at), ""]
        deg = [_label(g, w, b) for (sp_, g, w, b) in same if sp_ == s]
        if deg:
            md += ["rows equal to the uniform graph (distance constant on the edges, s = 0; not rerun): " + ", ".join(deg), ""]
        md += [gain_table(s, gains[s]), ""]
    md += ["select stream (mean regret @%d on %s): " % (at, sel_space) +
           ", ".join(f"{k} {v:.3f}" for k, v in select_scores.items())]
    results = dict(config=cfg, select=select_scores, chosen=[list(c) for c in chosen], report=report, stats=stats,
                   gains=gains)
    wall = time.perf_counter() - t0
    path = write_study(out, "\n".join(md), results, wall, indent=1)
    plot(report, path / f"delta{at}.png", at)
    return results


if __name__ == "__main__":
    main()
