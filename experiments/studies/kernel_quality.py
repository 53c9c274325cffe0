"""Kernel quality of architecture distances: GP regression with HOTNN, OTMANN, TW and Hamming kernels.

For each space — NAS-Bench-201 CIFAR-10 (``val_acc``), the 725 DARTS architectures of NAS-Bench-301
and the 500 NAS-Bench-101 cells (``val_accuracy``) — a pool of architectures is drawn once and the
full distance matrix of every method is computed with the pairwise engine.  For each of
``--splits`` random splits of the pool, a ``hotnas.gp.DistanceGP`` (Laplace kernel exp(-D / l),
ML-II; PSD policy ``--psd cap`` by default: ML-II only over length-scales where the Gram matrix is
PSD, see hotnas.gp; runs before 2026-11-23 used ``clip``) is trained on n = 50, 100, 200 architectures and scored on held-out
architectures of the pool: Spearman rank correlation of the posterior mean and the mean negative
log predictive density (NLL).  Results: mean +- std over splits, as measured.

    python experiments/studies/kernel_quality.py              # pool 300 per space, 10 splits
    python experiments/studies/kernel_quality.py --smoke      # seconds
    python experiments/studies/kernel_quality.py --plugin examples/gnn_space/gnn_space.py \
        --spaces gnn4 --table gnn4=gnn4-synthetic      # a plugin space, scored on a registered benchmark
    python experiments/studies/kernel_quality.py --psd cap clip   # both PSD policies on the same pools and splits

A space without a shipped table (a plugin's) draws its pool with ``space.sample`` (distinct, seeded)
and reads the values from the benchmark named by ``--table SPACE=BENCHMARK``.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from experiments.studies.common import parse_study_args, study_parser

METHODS = ("hotnn", "otmann", "tw", "hamming")
SPACES = ("darts", "nb101", "nb201")
ROOT = Path(__file__).resolve().parents[2]


def sample_space_data(space: str, benchmark: str, n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """``n`` distinct architectures of a registered space (seeded samples) and their benchmark values."""
    from hotnas.benchmarks import get_benchmark
    from hotnas.spaces import get_space

    sp, bench = get_space(space), get_benchmark(benchmark)
    rng = np.random.default_rng(seed)
    archs: dict[str, None] = {}
    for _ in range(100 * n):
        archs.setdefault(sp.canonical(sp.sample(rng)), None)
        if len(archs) >= n:
            break
    keys = list(archs)
    return keys, np.array([bench.query(a).value for a in keys], dtype=float)


def load_space_data(space: str, data_dir: Path | None = None) -> tuple[list[str], np.ndarray]:
    """Architecture strings and validation accuracies (%) of a table: the shipped copy, or the file of
    that space in ``data_dir`` (plain or ``.gz``)."""
    from hotnas.data import TABLES, load_table

    if space not in SPACES:
        raise ValueError(f"unknown space {space!r}; expected one of {SPACES}")
    path = None
    if data_dir is not None:
        name = TABLES[space].removesuffix(".gz")
        path = Path(data_dir) / name
        if not path.is_file():
            path = Path(data_dir) / TABLES[space]
    return load_table(space, path)


def _score_split(job) -> tuple[float, float]:
    """Fit a GP on one split; (Spearman of the posterior mean, held-out NLL)."""
    from hotnas.gp import DistanceGP

    D, yP, n, nt, s, seed, n_restarts, psd = job
    perm = np.random.default_rng(seed + 1000 * (s + 1)).permutation(len(yP))
    tr, te = perm[:n], perm[n : n + nt]
    gp = DistanceGP(kernel="laplace", psd=psd, n_restarts=n_restarts, seed=s)
    gp.fit(D[np.ix_(tr, tr)], yP[tr])
    mu, _var = gp.predict(D[np.ix_(te, tr)])
    with warnings.catch_warnings():  # a constant posterior mean has no rank correlation: scored 0
        warnings.simplefilter("ignore")
        r = spearmanr(mu, yP[te]).correlation
    return (0.0 if np.isnan(r) else float(r)), float(gp.nlpd(D[np.ix_(te, tr)], yP[te]))


def run(spaces, methods, sizes, n_test, pool, splits, seed, n_jobs, data_dir: Path | None, log=print,
        n_restarts: int = 1, on_space=None, psd: str | list[str] = "cap",
        tables: dict[str, str] | None = None) -> dict:
    from hotnas.distances.engine import PairwiseDistances
    from hotnas.spaces import get_space

    policies = [psd] if isinstance(psd, str) else list(psd)
    results: dict = {"config": dict(spaces=list(spaces), methods=list(methods), sizes=list(sizes), n_test=n_test,
                                    pool=pool, splits=splits, seed=seed, n_restarts=n_restarts,
                                    psd=psd, tables=dict(tables or {})),
               "distance_seconds": {}, "rows": []}
    for sname in spaces:
        space = get_space(sname)
        if sname in (tables or {}):
            archs, y = sample_space_data(sname, tables[sname], pool, seed)
        else:
            archs, y = load_space_data(sname, data_dir)
        rng = np.random.default_rng(seed)
        size = min(pool, len(archs))
        idx = rng.choice(len(archs), size=size, replace=False)
        P = [space.canonical(archs[i]) for i in idx]
        yP = y[idx]
        mats = {}
        for m in methods:
            t0 = time.perf_counter()
            eng = PairwiseDistances(space, method=m, n_jobs=n_jobs)
            mats[m] = eng.matrix(P)
            dt = time.perf_counter() - t0
            results["distance_seconds"][f"{sname}/{m}"] = dt
            log(f"[{sname}] {m}: {size} x {size} distances in {dt:.1f} s")
        jobs = []
        for n in sizes:
            nt = min(n_test, size - n)
            if nt < 5:
                log(f"[{sname}] n = {n}: pool too small for a test set, skipped")
                continue
            for m in methods:
                for pol in policies:
                    for s in range(splits):
                        jobs.append((n, nt, m, pol, s))
        payload = [(mats[m], yP, n, nt, s, seed, n_restarts, pol) for n, nt, m, pol, s in jobs]
        if n_jobs > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=n_jobs, mp_context=mp.get_context("fork")) as ex:
                scores = list(ex.map(_score_split, payload, chunksize=4))
        else:
            scores = [_score_split(p) for p in payload]
        by: dict = {}
        for (n, nt, m, pol, s), sc in zip(jobs, scores):
            by.setdefault((n, nt, m, pol), []).append(sc)
        for (n, nt, m, pol), scs in by.items():
            rho = [r for r, _ in scs]
            nll = [v for _, v in scs]
            row = dict(space=sname, n=n, method=m, psd=pol, n_test=nt, splits=splits,
                       spearman_mean=float(np.mean(rho)), spearman_std=float(np.std(rho)),
                       nll_mean=float(np.mean(nll)), nll_std=float(np.std(nll)),
                       nll_median=float(np.median(nll)), spearman_splits=rho, nll_splits=nll)
            results["rows"].append(row)
            log(f"[{sname}] n = {n:3d} {m:8s} {pol:5s} Spearman {row['spearman_mean']:.3f} +- {row['spearman_std']:.3f}   "
                f"NLL {row['nll_mean']:.3f} +- {row['nll_std']:.3f} (median {row['nll_median']:.3f})")
        if on_space is not None:
            on_space(results)
    return results


def table(results: dict) -> str:
    """Markdown table; the best mean per (space, n) in bold (highest Spearman, lowest NLL)."""
    rows = results["rows"]
    several = len({r.get("psd", "cap") for r in rows}) > 1
    lines = ["| space | n | method | " + ("psd | " if several else "")
             + "Spearman (mean ± std) | held-out NLL (mean ± std) | NLL median |",
             "|---|---|---|" + ("---|" if several else "") + "---|---|---|"]
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["space"], r["n"]), []).append(r)
    for (sp, n), rs in groups.items():
        best_rho = max(r["spearman_mean"] for r in rs)
        best_nll = min(r["nll_mean"] for r in rs)
        for r in rs:
            a = f"{r['spearman_mean']:.3f} ± {r['spearman_std']:.3f}"
            b = f"{r['nll_mean']:.3f} ± {r['nll_std']:.3f}"
            a = f"**{a}**" if r["spearman_mean"] == best_rho else a
            b = f"**{b}**" if r["nll_mean"] == best_nll else b
            med = f"{r['nll_median']:.3f}" if "nll_median" in r else "-"
            pol = f"{r.get('psd', 'cap')} | " if several else ""
            lines.append(f"| {sp} | {n} | {r['method']} | {pol}{a} | {b} | {med} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = study_parser(__doc__.split("\n")[0], "tiny pools, 2 splits: seconds", config=None, seed=0,
                      out=str(ROOT / "results" / "kernel_quality"))
    ap.add_argument("--spaces", nargs="+", default=list(SPACES),
                    help=f"registered spaces (default {' '.join(SPACES)}); one without a shipped table needs --table")
    ap.add_argument("--plugin", action="append", default=[], help="import a plugin first (module or .py path)")
    ap.add_argument("--table", action="append", default=[], metavar="SPACE=BENCHMARK",
                    help="score SPACE on the registered benchmark BENCHMARK (its pool drawn by sampling)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--sizes", nargs="+", type=int, default=[50, 100, 200])
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--pool", type=int, default=300, help="architectures drawn per space (train + test come from it)")
    ap.add_argument("--splits", type=int, default=10)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--n-restarts", type=int, default=1, help="random ML-II restarts of each GP fit (besides its default start)")
    ap.add_argument("--psd", nargs="+", default=["cap"], choices=["cap", "clip", "jitter", "raise"],
                    help="DistanceGP PSD policies (several: each on the same pools and splits); 'cap' keeps ML-II "
                         "to PSD length-scales (was 'clip' before 2026-11-23)")
    ap.add_argument("--data", default=None, help="folder of your own copies of the tables (default: the shipped ones)")
    args = parse_study_args(ap, argv)
    if args.plugin:
        from experiments.config import import_plugins

        import_plugins(args.plugin, "--plugin")
    tables = {}
    for item in args.table:
        sp, sep, bench = item.partition("=")
        if not sep:
            ap.error(f"--table expects SPACE=BENCHMARK, got {item!r}")
        tables[sp] = bench
    missing = [sp for sp in args.spaces if sp not in SPACES and sp not in tables]
    if missing:
        ap.error(f"spaces {missing} have no shipped table: give --table SPACE=BENCHMARK")
    if args.smoke:
        args.sizes, args.n_test, args.pool, args.splits = [10, 20], 10, 30, 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    def save(partial: dict) -> None:  # after every space, so a long run leaves results behind
        (out / "results.json").write_text(json.dumps(partial, indent=2))
        (out / "table.md").write_text(table(partial) + "\n")

    res = run(args.spaces, args.methods, args.sizes, args.n_test, args.pool, args.splits, args.seed, args.n_jobs,
              None if args.data is None else Path(args.data), n_restarts=args.n_restarts, on_space=save,
              psd=args.psd[0] if len(args.psd) == 1 else args.psd, tables=tables)
    res["seconds"] = time.perf_counter() - t0
    md = table(res)
    print(md)
    (out / "results.json").write_text(json.dumps(res, indent=2))
    (out / "table.md").write_text(md + "\n")
    return res


if __name__ == "__main__":
    main()
