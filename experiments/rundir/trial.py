"""One trial in its directory: a thin driver of :func:`hotnas.optimisers.base.run_search` whose hooks write
the event log and the checkpoints, and which resumes from them.

On ``--resume`` (:func:`run_trial` with ``resume=True``):

1. temporary files of interrupted writes (``.NAME.tmp-PID``) are deleted;
2. the log is read; a torn last line is moved to ``events.discarded.jsonl`` (kept, never deleted) and
   the log rewritten without it; evaluations of a step that was not closed are kept (*pending*);
3. the newest checkpoint that is intact (digest, length, format), belongs to this trial and is not
   ahead of the log is loaded — a truncated or corrupt one is reported with a warning and the previous
   one is used; if none is usable, the trial restarts from its seed;
4. ``run_search`` replays the steps logged after that checkpoint (:class:`~hotnas.optimisers.base.SearchState`):
   the optimiser is asked again (it is deterministic given its state), the logged evaluations are told
   instead of querying the benchmark; the pending evaluations of an unclosed step are told too and only
   the rest of that step is evaluated, so no finished evaluation is repeated or lost. If the optimiser
   proposes something else than what was logged (a non-deterministic optimiser), the remaining logged
   evaluations are moved to ``events.discarded.jsonl`` with a warning and the run goes on live from there.

Only an evaluation in flight when the process died (not finished, or finished but not yet written:
microseconds) is run again.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import Config, import_plugins, registry_entry
from .checkpoint import load_checkpoint, refuse_legacy, save_checkpoint
from .events import EventLog, logged_steps, read_log, result_from_events, truncate_log
from .files import (CHECKPOINT, CHECKPOINT_PREV, LEGACY_CHECKPOINTS, RUN_VERSION, SYNC_AFTER_S, ResumeWarning,
                    RunDirError, atomic_write, clean_temp_files, dumps)

__all__ = ["TrialSpec", "run_trial", "build_benchmark", "build_optimiser", "TrialHooks"]


def build_benchmark(name: str, options: dict[str, Any], seed: int | None = None, device: str | None = None):
    """A benchmark from the registry; ``seed``/``device`` are passed when its factory takes them."""
    from hotnas.benchmarks import get_benchmark
    from hotnas.optimisers.base import takes_keyword

    entry = registry_entry("benchmark", name)
    kwargs = dict(options)
    if seed is not None and entry is not None and takes_keyword(entry, "seed") and "seed" not in kwargs:
        kwargs["seed"] = seed
    if device is not None and entry is not None and takes_keyword(entry, "device"):
        kwargs["device"] = device
    return get_benchmark(name, **kwargs)


def build_optimiser(name: str, space: Any, seed: int, options: dict[str, Any], device: str | None = None,
                    budget: int | None = None):
    """An optimiser from the registry; ``device`` and the query ``budget`` are passed when it takes them."""
    import hotnas.optimisers  # noqa: F401 - registers the library's optimisers
    from hotnas.optimisers.base import get_optimiser, takes_keyword

    kwargs = dict(options)
    entry = registry_entry("optimiser", name)
    for key, value in (("device", device), ("budget", budget)):
        if value is not None and entry is not None and takes_keyword(entry, key):
            kwargs[key] = value
    return get_optimiser(name, space, seed=seed, **kwargs)


def _masses(opt: Any) -> dict[str, float] | None:
    """Mass per architecture, for the mass plots: the optimiser's ``masses()`` or ``mass()`` (a flow:
    the fraction of particles on each architecture); logged on the last event line of each step."""
    fn = getattr(opt, "masses", None) or getattr(opt, "mass", None)
    if not callable(fn):
        return None
    m = fn()
    return {str(k): float(v) for k, v in dict(m).items()} if m else None


@dataclass
class TrialSpec:
    """Everything a worker needs to run (or resume) one method with one seed. Picklable."""

    label: str
    optimiser: str
    options: dict[str, Any]
    seed: int
    benchmark: str
    benchmark_options: dict[str, Any]
    budget: int
    batch_size: int = 1
    checkpoint_every: int = 1
    plugins: list[str] = field(default_factory=list)
    device: str | None = None
    fingerprint: str = ""

    @property
    def trial_id(self) -> str:
        return f"{self.label}__seed{self.seed}"

    @classmethod
    def from_config(cls, config: Config) -> list["TrialSpec"]:
        device = None if config.execution.device == "auto" else config.execution.device
        return [cls(label=m.label, optimiser=m.optimiser, options=dict(m.options), seed=seed,
                    benchmark=config.benchmark.name, benchmark_options=dict(config.benchmark.options),
                    budget=config.search.budget, batch_size=config.search.batch_size,
                    checkpoint_every=config.search.checkpoint_every, plugins=list(config.plugins),
                    device=device, fingerprint=config.fingerprint())
                for m in config.methods for seed in config.search.seeds]



def _check_trial_events(events: list[dict[str, Any]], spec: TrialSpec, log_path: Path) -> None:
    for e in events:
        if e.get("trial", spec.trial_id) != spec.trial_id or e.get("method", spec.label) != spec.label or \
                e.get("seed", spec.seed) != spec.seed:
            raise RunDirError(f"{log_path} holds evaluations of another trial ({e.get('trial') or e.get('method')}, "
                              f"seed {e.get('seed')}), not of {spec.trial_id}; it was copied or moved here — put it "
                              f"back where it belongs or move it away to restart this trial")


class TrialHooks:
    """The hooks of one trial's :func:`~hotnas.optimisers.base.run_search`: each finished evaluation is
    appended to the log at once (an ``"eval"`` line), each told step closed by a ``"step"`` line, each
    checkpoint written after an fsync of the log. ``on_step(n)`` hears the new evaluations (progress)."""

    def __init__(self, spec: TrialSpec, trial_dir: Path, log: EventLog, optimiser: Any, benchmark: Any,
                 on_step: Callable[[int], None] | None = None) -> None:
        self.spec, self.trial_dir, self.log = spec, trial_dir, log
        self.optimiser, self.benchmark, self.on_step = optimiser, benchmark, on_step

    def on_ask(self, step: int, asked: int, archs: list[str]) -> None:
        pass

    def on_evaluation(self, step: int, asked: int, archs: list[str], index: int, ev: Any, wall: float,
                      seconds: float) -> None:
        s = self.spec
        line = {"kind": "eval", "trial": s.trial_id, "batch": step, "asked": asked, "batch_size": len(archs),
                "index": index, "method": s.label, "seed": s.seed, "arch": ev.arch, "value": ev.value,
                "test": ev.test, "cost": ev.cost, "wall_clock": wall}
        if ev.arch != archs[index]:
            line["proposed"] = archs[index]
        self.log.append([line], sync=seconds > SYNC_AFTER_S)

    def on_tell(self, step: int, asked: int, archs: list[str], evals: list[Any], recommendation: str | None,
                kind: str) -> None:
        if kind == "replayed":          # a closed step of the log: already written
            return
        line = {"kind": "step", "trial": self.spec.trial_id, "batch": step, "batch_size": len(archs),
                "recommendation": recommendation, "n_queries": self.benchmark.n_queries,
                "total_cost": self.benchmark.total_cost}
        masses = _masses(self.optimiser)
        if masses is not None:
            line["masses"] = masses
        self.log.append([line])
        if kind == "live" and self.on_step is not None:
            self.on_step(len(archs))

    def on_resumed(self, result: Any) -> None:
        if self.on_step is not None and result.values:
            self.on_step(len(result.values))

    def on_checkpoint(self, state: Any) -> None:
        s = self.spec
        self.log.sync()
        save_checkpoint(self.trial_dir, {
            "version": RUN_VERSION, "fingerprint": s.fingerprint, "trial": s.trial_id, "optimiser_name": s.optimiser,
            "seed": s.seed, "n_batches": state.n_steps, "n_events": len(state.result.values),
            "finished": state.finished, "optimiser": state.optimiser, "benchmark": state.benchmark,
            "time": time.time()})


def run_trial(spec: TrialSpec, trial_dir: str | Path, resume: bool = False,
              evaluator: Callable[..., list[Any]] | None = None,
              on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run (or, with ``resume``, continue) one trial in ``trial_dir``; return its result as a dict.

    ``evaluator(benchmark, archs)`` evaluates a step's architectures (default: ``benchmark.query``
    one after the other); when it takes an ``on_result`` keyword it is called ``on_result(i, evaluation)``
    as each finishes, and the evaluation is logged right then. ``on_step(n_new_evaluations)`` is called
    after each step (progress bars). The result is ``run_search(optimiser, benchmark, budget, batch_size)``
    of a fresh optimiser and benchmark — it is that call, with hooks — whether or not the trial was
    interrupted and resumed in between.
    """
    from hotnas.optimisers.base import ReplayDiverged, SearchState, run_search

    trial_dir = Path(trial_dir)
    tid = spec.trial_id
    done = trial_dir / "result.json"
    if resume and done.exists():
        try:
            out = json.loads(done.read_text())
            reason = None if isinstance(out, dict) and out.get("trial", tid) == tid else "is another trial's result"
        except (ValueError, UnicodeDecodeError) as exc:
            out, reason = None, f"is garbled ({exc})"
        if reason is None:
            return out
        warnings.warn(f"{done} {reason}; it is rebuilt from the event log", ResumeWarning, stacklevel=2)
        done.unlink()
    trial_dir.mkdir(parents=True, exist_ok=True)
    log_path = trial_dir / "events.jsonl"
    if not resume and (log_path.exists() or any((trial_dir / n).exists()
                                                for n in (CHECKPOINT, CHECKPOINT_PREV, *LEGACY_CHECKPOINTS))):
        raise RunDirError(f"{trial_dir} already holds a started trial; pass resume=True (--resume) to continue it")
    if resume:
        clean_temp_files(trial_dir)
        refuse_legacy(trial_dir)

    import_plugins(spec.plugins)
    bench = build_benchmark(spec.benchmark, spec.benchmark_options, seed=spec.seed, device=spec.device)
    opt = build_optimiser(spec.optimiser, bench.space, spec.seed, spec.options, device=spec.device,
                          budget=spec.budget)

    logged, pending = read_log(log_path, repair=True) if resume else ([], [])
    _check_trial_events(logged + pending, spec, log_path)
    ckpt = load_checkpoint(trial_dir, max_events=len(logged), fingerprint=spec.fingerprint, trial=tid) \
        if resume else None
    state = SearchState()
    if ckpt is not None:
        state = SearchState(n_steps=ckpt["n_batches"], finished=ckpt.get("finished", False),
                            optimiser=ckpt["optimiser"], benchmark=ckpt["benchmark"])
    elif logged and any((trial_dir / n).exists() for n in (CHECKPOINT, CHECKPOINT_PREV)):
        warnings.warn(f"{trial_dir}: no usable checkpoint; replaying all {len(logged)} logged evaluations from "
                      f"the seed", ResumeWarning, stacklevel=2)
    n_events = ckpt["n_events"] if ckpt is not None else 0
    state.result = result_from_events(logged[:n_events], spec.label, spec.seed)
    state.replay = logged_steps(logged[n_events:], pending)

    log = EventLog(log_path)
    try:
        result = run_search(opt, bench, spec.budget, spec.batch_size, seed=spec.seed, evaluate=evaluator,
                            hooks=TrialHooks(spec, trial_dir, log, opt, bench, on_step), resume=state,
                            checkpoint_every=spec.checkpoint_every, method=spec.label)
    except ReplayDiverged as exc:
        where = "the last step" if exc.open_step else f"step {exc.n_evaluations}"
        warnings.warn(f"{trial_dir}: on replay the optimiser proposed {exc.proposed[:3]} where the log has "
                      f"{exc.logged[:3]} (it is not deterministic given its state); the {exc.lost} logged "
                      f"evaluation(s) from {where} on are moved to events.discarded.jsonl and run again",
                      ResumeWarning, stacklevel=2)
        log.close()
        truncate_log(log_path, exc.n_steps)
        # the optimiser has consumed an ask: restart it from the last consistent state
        return run_trial(spec, trial_dir, resume=True, evaluator=evaluator, on_step=on_step)
    finally:
        log.close()

    out = result.to_dict()
    out.update(trial=tid, label=spec.label, optimiser=spec.optimiser, n_queries=bench.n_queries,
               total_cost=bench.total_cost, wall_time=result.wall_clock[-1] if result.wall_clock else 0.0)
    atomic_write(done, dumps(out, indent=1))
    return out
