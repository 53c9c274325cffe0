"""Run a config: every (method, seed) trial, in a run directory, on an executor, with a progress bar.

    from experiments.config import load_config
    from experiments.runner import run_config
    summary = run_config(load_config("experiments/configs/main.toml"), "runs/main")

Two ways to use workers (``[execution] parallel``): ``"trials"`` (default) runs whole trials on the
executor's workers — each trial writes its own directory, so a run killed anywhere resumes; and
``"evaluations"`` runs the trials one after the other and sends each step's queries to the workers
(for batches of expensive candidates, e.g. training on a Ray cluster). Results are the same either
way, and the same for any executor and any number of workers.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from .config import Config, ConfigError
from .executors import make_executor
from .rundir import RunDir, TrialSpec, build_benchmark, build_optimiser, load_trial_results, run_trial

__all__ = ["run_config", "RunFailed", "preflight", "default_out"]


class RunFailed(RuntimeError):
    """Some trials raised; the others finished and everything is in the run directory."""


def default_out(config: Config) -> Path:
    return Path("runs") / config.name


def preflight(config: Config) -> None:
    """Build the benchmark and each optimiser once, so impossible option values fail before any work
    starts, with the config section in the message."""
    spec = TrialSpec.from_config(config)[0]
    where = Path(config.source).name if config.source else "<config>"
    try:
        bench = build_benchmark(spec.benchmark, spec.benchmark_options, seed=spec.seed, device=spec.device)
    except (ValueError, TypeError, ImportError, OSError) as exc:
        raise ConfigError(f"{where}: benchmark: {config.benchmark.name!r} rejected its options "
                          f"{config.benchmark.options}: {exc}") from exc
    for i, m in enumerate(config.methods):
        try:
            build_optimiser(m.optimiser, bench.space, spec.seed, m.options, device=spec.device, budget=spec.budget)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: methods[{i}] ({m.label}): optimiser {m.optimiser!r} rejected its options "
                              f"{m.options}: {exc}") from exc


# ---------------------------------------------------------------------------------------------------
# evaluations on workers

_BENCHMARKS: dict[tuple, Any] = {}


def _query_on_worker(key: tuple, plugins: list[str], name: str, options: dict, seed: int, device: str | None,
                     arch: str):
    from .config import import_plugins

    bench = _BENCHMARKS.get(key)
    if bench is None:
        import_plugins(plugins)
        bench = _BENCHMARKS[key] = build_benchmark(name, options, seed=seed, device=device)
    return bench.query(arch)


def _worker_evaluator(executor: cf.Executor, spec: TrialSpec) -> Callable[..., list[Any]]:
    key = (spec.benchmark, repr(sorted(spec.benchmark_options.items())), spec.seed, spec.device)

    def evaluate(bench: Any, archs: list[str], on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
        futures = {executor.submit(_query_on_worker, key, spec.plugins, spec.benchmark, spec.benchmark_options,
                                   spec.seed, spec.device, a): i for i, a in enumerate(archs)}
        evals: list[Any] = [None] * len(archs)
        for fut in cf.as_completed(futures):          # each is logged the moment it comes back
            i = futures[fut]
            evals[i] = fut.result()
            bench.count([evals[i]])                   # the parent's benchmark counts what its workers did
            if on_result is not None:
                on_result(i, evals[i])
        return evals

    return evaluate


# ---------------------------------------------------------------------------------------------------
# progress


class _Progress:
    """A tqdm bar over all evaluations of a run, fed by polling the trials' event logs (works for any
    executor whose workers write to this file system; otherwise it advances when trials finish)."""

    def __init__(self, run: RunDir, specs: list[TrialSpec], enabled: bool) -> None:
        self.total = sum(s.budget for s in specs)
        self.files = [run.trial_dir(s.trial_id) / "events.jsonl" for s in specs]
        self.counts = {f: 0 for f in self.files}
        self.offsets = {f: 0 for f in self.files}
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, unit="eval", desc=run.path.name, dynamic_ncols=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> "_Progress":
        if self.bar is not None:
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            self.refresh()

    def refresh(self, finished: dict[Path, int] | None = None) -> None:
        for f in self.files:
            try:
                size = f.stat().st_size
                if size > self.offsets[f]:
                    with open(f, "rb") as fh:
                        fh.seek(self.offsets[f])
                        chunk = fh.read(size - self.offsets[f])
                    self.offsets[f] += len(chunk)
                    self.counts[f] += chunk.count(b'"kind": "eval"')
            except OSError:
                pass
        for f, n in (finished or {}).items():
            self.counts[f] = max(self.counts[f], n)
        if self.bar is not None:
            done = min(self.total, sum(self.counts.values()))
            self.bar.update(done - self.bar.n)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.bar is not None:
            self.refresh()
            self.bar.close()


# ---------------------------------------------------------------------------------------------------
# the run


def run_config(config: Config, out: str | Path | None = None, *, resume: bool = False, overwrite: bool = False,
               executor: cf.Executor | None = None, progress: bool = True, report: bool = True,
               command: list[str] | None = None, log: Callable[[str], None] = print,
               from_run_dir: bool = False) -> dict[str, Any]:
    """Run (or resume) every trial of ``config`` in ``out``; write the summary, and the plots and the
    report when ``report``; return the summary. Raises :class:`RunFailed` when some trial failed (after
    the others finished) — fix the cause and ``--resume``.

    The run directory is locked for the whole call (:class:`~experiments.rundir.RunLock`): a second
    process running or resuming it is refused with :class:`~experiments.rundir.RunDirError`.
    ``from_run_dir``: ``config`` was read from ``out``'s own ``config.toml`` (for the error message
    when it was edited)."""
    t_start = time.perf_counter()
    out = Path(out) if out is not None else default_out(config)
    if resume and RunDir.is_run_dir(out):
        run = RunDir.open(out).lock(log)
        try:
            run.check_config(config, from_run_dir=from_run_dir)
            run.check_no_pickles()
            removed = run.clean_temp_files()
        except BaseException:
            run.unlock()
            raise
        if removed:
            log(f"sdot-nas: removed {len(removed)} temporary file(s) of interrupted writes: {', '.join(removed[:5])}")
    elif resume and out.exists() and (not out.is_dir() or not RunDir.is_empty(out)):
        run = RunDir.open(out)      # raises: not a run directory
    else:
        preflight(config)
        run = RunDir.create(out, config, overwrite=overwrite, command=command, log=log)
    try:
        return _run_locked(config, run, resume, executor, progress, report, log, t_start)
    finally:
        run.unlock()


def _run_locked(config: Config, run: RunDir, resume: bool, executor: cf.Executor | None, progress: bool,
                report: bool, log: Callable[[str], None], t_start: float) -> dict[str, Any]:
    from .report import summarise, write_report

    specs = TrialSpec.from_config(config)
    ex = config.execution
    own_executor = executor is None
    if own_executor:
        workers = ex.workers if ex.executor != "serial" else 1
        executor = make_executor(ex.executor, workers, address=ex.ray_address or None)
    where = "" if ex.executor == "serial" else f", workers={ex.workers or 'all'}"
    log(f"sdot-nas: {len(specs)} trial(s) ({len(config.methods)} method(s) x {len(config.search.seeds)} seed(s)) "
        f"of {config.search.budget} queries on {config.benchmark.name!r} -> {run.path} "
        f"[{ex.executor}, {ex.parallel}{where}]")

    results: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    try:
        with _Progress(run, specs, progress) as bar:
            if ex.parallel == "evaluations":
                for s in specs:
                    try:
                        results[s.trial_id] = run_trial(s, run.trial_dir(s.trial_id), resume=resume,
                                                        evaluator=_worker_evaluator(executor, s))
                    except Exception as exc:  # noqa: BLE001 - reported below, the other trials go on
                        failures[s.trial_id] = _describe(exc)
            else:
                futures = {executor.submit(run_trial, s, run.trial_dir(s.trial_id), resume): s for s in specs}
                for fut in cf.as_completed(futures):
                    s = futures[fut]
                    try:
                        results[s.trial_id] = fut.result()
                        bar.refresh({run.trial_dir(s.trial_id) / "events.jsonl": len(results[s.trial_id]["values"])})
                    except Exception as exc:  # noqa: BLE001
                        failures[s.trial_id] = _describe(exc)
    except KeyboardInterrupt:
        if own_executor:
            _stop_now(executor, log)
        log(f"sdot-nas: interrupted; nothing is lost — continue with: sdot-nas run {run.path} --resume")
        raise
    finally:
        if own_executor:
            executor.shutdown(wait=True, cancel_futures=True)

    wall = time.perf_counter() - t_start
    summary = summarise(config, results)
    summary.update(run_dir=str(run.path), wall_time_s=wall, failed=failures,
                   executor=ex.executor, workers=ex.workers, parallel=ex.parallel)
    previous = run.summary()
    if resume and previous:     # a resumed run reports the time of all its sessions
        before = previous.get("wall_time_sessions_s", [previous.get("wall_time_s", 0)])
        summary["wall_time_sessions_s"] = before + [wall]
    run.write_summary(summary)
    if report and not failures:
        write_report(run, config=config, summary=summary, plots=config.report.plots)
    if failures:
        detail = "\n".join(f"  {tid}: {msg}" for tid, msg in failures.items())
        raise RunFailed(f"{len(failures)} of {len(specs)} trial(s) failed (the others are saved in {run.path}):\n"
                        f"{detail}\nfix the cause, then continue with: sdot-nas run {run.path} --resume")
    return summary


def _stop_now(executor: cf.Executor, log: Callable[[str], None]) -> None:
    """After Ctrl-C: stop the worker processes at once instead of waiting for their trials to finish.

    Every finished evaluation is already in its trial's event log and checkpoints are written
    atomically, so killing a worker mid-trial loses nothing that ``--resume`` does not replay.
    """
    procs = list((getattr(executor, "_processes", None) or {}).values())  # ProcessPoolExecutor's workers
    if procs:
        log(f"sdot-nas: stopping {len(procs)} worker process(es) ...")
    executor.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)


def _describe(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def results_of(run: RunDir) -> dict[str, dict[str, Any]]:
    """The results stored in a run directory (finished trials and partial ones)."""
    return load_trial_results(run)
