"""The ``sdot-nas`` command line.

    sdot-nas run experiments/configs/main.toml              # the main job: flow vs HOTNAS vs baselines, report
    sdot-nas run experiments/configs/main.toml --data PATH              # the same on a NAS-Bench-201 table
    sdot-nas run runs/main --resume                          # continue a killed run (nothing lost)
    sdot-nas compare --benchmark digits --methods flow,hotnas,evolution,random --seed 0-2 --budget 20
    sdot-nas plot runs/main ; sdot-nas report runs/main
    sdot-nas export runs/main --csv runs_main.csv            # every evaluation of every trial, one tidy row each
    sdot-nas list [--plugin my_ext.py] [--config CONFIG]      # every registry's names (plugins included)
    sdot-nas validate CONFIG                                 # check a config, print it resolved

Errors in configs and run directories are one line naming the key or path and the fix (exit code 2);
a run with failed trials exits with 1 after saving everything else.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser"]


def _add_execution_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("execution (never changes the results)")
    g.add_argument("--workers", type=int, help="worker processes (0 = one per core); implies --executor process "
                   "unless --executor is given")
    from .executors import EXECUTORS

    g.add_argument("--executor", choices=list(EXECUTORS), help="where trials run")
    g.add_argument("--parallel", choices=["trials", "evaluations"],
                   help="what the workers run: whole trials (default) or each step's evaluations")
    g.add_argument("--ray-address", help="join this Ray cluster ('auto', 'ray://host:port'); default: a local instance")
    g.add_argument("--device", help="torch device for trainable benchmarks/optimisers: cpu, cuda, cuda:N, auto")


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="run directory (default: runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (or RUN_DIR), losing nothing")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory (only a verified one "
                   "holding nothing but a run's own files, and only those are deleted)")
    p.add_argument("--seed", help="seed(s) overriding the config: 3, 0,2,5 or 0-9")
    p.add_argument("--budget", type=int, help="queries per trial, overriding the config (report milestones above "
                   "it are dropped and the budget added)")
    p.add_argument("--no-report", action="store_true", help="skip the figures and report.md at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_execution_flags(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sdot-nas", description="Gradient-flow and Bayesian neural architecture "
                                     "search: run studies and comparisons, plot, report.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run a config (a study or a comparison), or resume a run directory")
    p.add_argument("config", help="a TOML config (experiments/configs/*.toml) or, with --resume, a run directory")
    p.add_argument("--data", help="path to a benchmark table (file or folder, plain or .gz): applies the "
                   "config's [with_data] section (main.toml: the NB201 comparison)")
    _add_run_flags(p)

    p = sub.add_parser("compare", help="compare methods x seeds on one benchmark, from flags")
    p.add_argument("--benchmark", default=None, help="benchmark name (default: digits, or nb201 with --data)")
    p.add_argument("--benchmark-option", action="append", default=[], metavar="KEY=VALUE",
                   help="benchmark option (VALUE read as TOML: 3, 0.5, true, \"text\"); repeatable")
    p.add_argument("--methods", default="flow,hotnas,evolution,random", help="comma-separated optimiser names")
    p.add_argument("--method-option", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="optimiser option, e.g. flow.law=metropolis; repeatable")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--data", help="NB201 table (file, or a folder holding nb201_cifar10.csv): sets the "
                   "benchmark's path option")
    p.add_argument("--name", default=None, help="name of the comparison (default: compare-<benchmark>)")
    _add_run_flags(p)

    p = sub.add_parser("plot", help="(re)draw the figures of a run directory")
    p.add_argument("run_dir")
    p = sub.add_parser("report", help="write RUN_DIR/report.md: the results table and the figures")
    p.add_argument("run_dir")
    p.add_argument("--no-plots", action="store_true", help="table only")
    p = sub.add_parser("export", help="write every evaluation of a run directory as a tidy CSV")
    p.add_argument("run_dir")
    p.add_argument("--csv", required=True, metavar="OUT", help="the CSV file to write ('-' for standard output)")
    p = sub.add_parser("list", help="list every registry's names (what a config may name)")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                   help="import a plugin first (a module name or a .py path); repeatable")
    p.add_argument("--config", help="import the plugins of this config first (resolved relative to it)")
    p = sub.add_parser("validate", help="check a config and print it resolved")
    p.add_argument("config")
    p.add_argument("--data", help="as for run")
    return parser


def _toml_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _key_value(text: str, flag: str) -> tuple[str, Any]:
    from .config import ConfigError

    if "=" not in text:
        raise ConfigError(f"{flag} {text!r}: expected KEY=VALUE")
    key, value = text.split("=", 1)
    return key.strip(), _toml_value(value.strip())


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from .config import parse_seeds

    ov: dict[str, Any] = {}
    if args.seed is not None:
        ov["search.seeds"] = parse_seeds(args.seed)
    if args.budget is not None:
        ov["search.budget"] = args.budget
    if args.workers is not None:
        ov["execution.workers"] = args.workers
        if args.executor is None and args.workers != 1:
            ov["execution.executor"] = "process"
    for flag, key in (("executor", "executor"), ("parallel", "parallel"), ("device", "device"),
                      ("ray_address", "ray_address")):
        if getattr(args, flag, None) is not None:
            ov[f"execution.{key}"] = getattr(args, flag)
    return ov


def _compare_config(args: argparse.Namespace) -> dict[str, Any]:
    from .config import ConfigError

    bench = args.benchmark or ("nb201" if args.data else "digits")
    options = dict(_key_value(kv, "--benchmark-option") for kv in args.benchmark_option)
    if args.data:
        p = Path(args.data)
        if p.is_dir():
            p = p / "nb201_cifar10.csv" if (p / "nb201_cifar10.csv").is_file() else p / "nb201_cifar10.csv.gz"
        if not p.is_file():
            raise ConfigError(f"--data {args.data}: no such file {str(p)!r}")
        options["path"] = str(p.resolve())
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    mopts: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for kv in args.method_option:
        key, value = _key_value(kv, "--method-option")
        method, _, opt = key.partition(".")
        if method not in mopts or not opt:
            raise ConfigError(f"--method-option {kv!r}: expected METHOD.KEY=VALUE with METHOD one of {methods}")
        mopts[method][opt] = value
    return {"name": args.name or f"compare-{bench}",
            "benchmark": {"name": bench, "options": options},
            "search": {"budget": args.budget or 20, "seeds": [0, 1, 2], "batch_size": args.batch_size},
            "methods": [{"optimiser": m, "options": mopts[m]} for m in methods]}


def _format_time(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m)}m{s:04.1f}s" if m else f"{s:.1f}s"


def _cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from .config import config_from_dict, load_config
    from .rundir import RunDir
    from .runner import default_out, run_config

    t0 = time.perf_counter()
    overrides = _overrides(args)
    if args.command == "compare":
        config = config_from_dict(_compare_config(args), "compare", overrides=overrides)
        out = Path(args.out) if args.out else default_out(config)
    elif Path(args.config).is_dir():
        run = RunDir.open(args.config)
        if not args.resume:
            print(f"sdot-nas: {args.config} is a run directory; pass --resume to continue it "
                  f"(or 'sdot-nas report {args.config}')", file=sys.stderr)
            return 2
        config = config_from_dict(run.raw_config(), str(run.path / "config.toml"), overrides=overrides)
        out = run.path
    else:
        if args.budget is not None:
            ms = _milestones_for_budget(Path(args.config), args.data, args.budget)
            if ms is not None:
                overrides["report.milestones"] = ms
        config = load_config(args.config, data=args.data, overrides=overrides)
        out = Path(args.out) if args.out else default_out(config)
    summary = run_config(config, out, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                         report=not args.no_report, command=["sdot-nas", *argv],
                         from_run_dir=args.command == "run" and Path(args.config).is_dir())
    wall = time.perf_counter() - t0
    print(_summary_text(summary))
    report = Path(summary["run_dir"]) / "report.md"
    where = f"; report: {report}" if report.exists() and not args.no_report else ""
    print(f"sdot-nas: done in {_format_time(wall)} (wall clock, {wall:.1f} s){where}")
    return 0


def _milestones_for_budget(path: Path, data: str | None, budget: int) -> list[int] | None:
    """The config's report milestones fitted to a ``--budget``: those above it dropped, the budget added
    (None when the config lists none: the default quarters follow the budget by themselves)."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None                         # load_config reports the problem
    report = raw.get("report") if isinstance(raw.get("report"), dict) else {}
    ms = report.get("milestones")
    wd = raw.get("with_data")
    if data is not None and isinstance(wd, dict) and isinstance(wd.get("report"), dict):
        ms = wd["report"].get("milestones", ms)
    if not isinstance(ms, list) or not ms or not all(isinstance(m, int) for m in ms):
        return None
    return sorted({m for m in ms if m < budget} | {budget})


def _summary_text(summary: dict[str, Any]) -> str:
    q = summary["milestones"][-1]
    lines = [f"{'method':<22} {'best val @' + str(q):>18} {'test of best':>16} {'regret':>14}"]
    for label, m in summary["methods"].items():
        s = m["milestones"][str(q)]
        fmt = lambda d, k=2: f"{d['mean']:.{k}f} ± {d['std']:.{k}f}" if d else "–"  # noqa: E731
        lines.append(f"{label:<22} {fmt(s['best']):>18} {fmt(s['test_of_best']):>16} {fmt(s['regret'], 3):>14}")
    return "\n".join(lines)


def _cmd_plot(args: argparse.Namespace) -> int:
    from .report import make_figures
    from .rundir import RunDir, load_trial_results

    run = RunDir.open(args.run_dir)
    config = run.config()
    figures = make_figures(run, config, load_trial_results(run))
    if not figures:
        print(f"sdot-nas: {run.path} holds no evaluations yet; nothing to plot", file=sys.stderr)
        return 1
    for caption, path in figures:
        print(f"{run.path / path}  — {caption}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    path = write_report(args.run_dir, plots=not args.no_plots)
    print(f"sdot-nas: wrote {path}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .report import export_csv
    from .rundir import RunDir

    run = RunDir.open(args.run_dir)
    n = export_csv(run, args.csv)
    if args.csv != "-":
        print(f"sdot-nas: wrote {n} evaluation(s) of {len(run.trial_ids())} trial(s) to {args.csv}")
    return 0


def _cmd_list(args: argparse.Namespace | None = None) -> int:
    from .config import import_plugins, registries

    if args is not None and args.config:
        cfg = Path(args.config)
        try:
            raw = tomllib.loads(cfg.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            from .config import ConfigError

            raise ConfigError(f"{cfg}: cannot read the config's plugins: {exc}") from exc
        import_plugins(list(raw.get("plugins", [])), f"{cfg.name}: plugins", base=cfg.parent)
    if args is not None and args.plugin:
        import_plugins(list(args.plugin), "--plugin")
    for kind, names in registries().items():
        print(f"{kind + 's':<14} {', '.join(names) if names else '(none registered)'}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .config import dump_toml, load_config

    config = load_config(args.config, data=args.data)
    print(dump_toml(config.to_dict(), header=f"{args.config}: valid; fingerprint {config.fingerprint()[:16]}"))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sdot-nas`` console script; returns the exit code."""
    from .config import ConfigError
    from .rundir import RunDirError
    from .runner import RunFailed

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("run", "compare"):
            return _cmd_run(args, argv)
        if args.command == "plot":
            return _cmd_plot(args)
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "export":
            return _cmd_export(args)
        if args.command == "list":
            return _cmd_list(args)
        return _cmd_validate(args)
    except (ConfigError, RunDirError) as exc:
        print(f"sdot-nas: error: {exc}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"sdot-nas: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
