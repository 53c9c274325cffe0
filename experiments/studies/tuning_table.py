"""Study: choose a default among variants run on a tuning stream of seeds (issue 13's rule).

Each variant is a ``compare_tabular`` folder (one method, one option override, the tuning root seed).
Score of a search: its **mean regret over the queries after the initial design** (``--from`` .. budget,
the area under the regret curve where the optimiser is in charge), per seed. The rule, fixed before
the variants were run: a variant replaces the reference (the current default) only if its paired
difference, variant minus reference on the same seeds, is below minus one standard error; otherwise
the default stays.

    python -m experiments.studies.tuning_table results/tune13 --reference default --from 21

prints a markdown table (score mean ± s.e., regret at checkpoints, the paired difference, CPU s per
search, the verdict) and returns it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import numpy as np

from .common import describe
from .compare_tabular import load_trials, regret_matrix

__all__ = ["variant_scores", "tuning_table", "main"]


def variant_scores(folder: Path, first: int) -> tuple[dict[int, float], np.ndarray, float]:
    """Per-seed score (mean regret over queries ``first``..budget), the (n_seeds, budget) regret matrix and
    the mean CPU seconds per search, of the single method in a ``compare_tabular`` folder."""
    trials = load_trials(folder / "trials.jsonl")
    labels = sorted({t["label"] for t in trials})
    if len(labels) != 1:
        raise ValueError(f"{folder}: a variant folder holds one method, found {labels or 'none'}")
    seeds, M = regret_matrix(trials, labels[0])
    if not 1 <= first <= M.shape[1]:
        raise ValueError(f"--from must lie in 1..{M.shape[1]} (the budget of {folder}), got {first}")
    cpu = float(np.mean([t.get("cpu_seconds", np.nan) for t in trials]))
    return dict(zip(seeds, M[:, first - 1:].mean(axis=1).tolist())), M, cpu


def tuning_table(root: Path, reference: str, first: int = 21, checkpoints: tuple[int, ...] = (50, 100)) -> str:
    """The markdown table of every variant folder under ``root`` against ``root/reference``."""
    names = sorted(p.name for p in root.iterdir() if (p / "trials.jsonl").exists())
    if reference not in names:
        raise ValueError(f"no reference folder {reference!r} under {root}; variants: {names}")
    ref, _, _ = variant_scores(root / reference, first)
    rows = ["| variant | n | score (mean regret after the initial design) | "
            + " | ".join(f"@{c}" for c in checkpoints) + " | variant − default (paired) | CPU s / search | verdict |",
            "|---" * (6 + len(checkpoints)) + "|"]
    for name in [reference] + [n for n in names if n != reference]:
        sc, M, cpu = variant_scores(root / name, first)
        m, se, n = describe(sc.values(), spread="se")
        at = [f"{M[:, c - 1].mean():.3f}" if c <= M.shape[1] else "–" for c in checkpoints]
        common = sorted(set(sc) & set(ref))
        if name == reference:
            diff, verdict = "–", "the default"
        else:
            d = np.array([sc[s] - ref[s] for s in common])
            dm, dse, _ = describe(d, spread="se")
            diff = f"{dm:+.3f} ± {dse:.3f}"
            verdict = "replaces the default" if dm < -dse else "default stays"
        rows.append(f"| {name} | {n} | {m:.3f} ± {se:.3f} | " + " | ".join(at) + f" | {diff} | {cpu:.1f} | {verdict} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", help="folder of the variant folders")
    ap.add_argument("--reference", default="default")
    ap.add_argument("--from", dest="first", type=int, default=21, help="first query of the score (after n_init)")
    ap.add_argument("--checkpoints", type=int, nargs="+", default=[50, 100])
    args = ap.parse_args(argv)
    root = Path(args.root)
    if not root.is_dir():
        ap.error(f"no such folder: {root}")
    md = tuning_table(root, args.reference, args.first, tuple(args.checkpoints))
    print(md)
    return md



if __name__ == "__main__":
    main()
