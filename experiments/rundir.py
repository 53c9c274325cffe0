"""Run directories that lose nothing: resolved config, append-only event log, atomic checkpoints, resume.

Layout::

    RUN_DIR/
      run.json                      marker: format, version, config fingerprint, creation time, command
      config.toml                   the resolved config (every default filled in; runnable as is)
      summary.json                  per method and per trial results, wall time (written at the end)
      report.md, figures/*.png      written by ``sdot-nas report`` / at the end of ``sdot-nas run``
      trials/<label>__seed<k>/
        events.jsonl                one JSON line per evaluation, appended, never rewritten in place
        checkpoint.pkl              latest checkpoint; checkpoint.prev.pkl the one before
        result.json                 the trial's final :class:`~hotnas.optimisers.base.SearchResult`

**The event log is the source of truth; checkpoints only save recomputation.** One step of a trial
is ``ask -> query -> tell -> recommend``; the step's evaluations are appended to the log in a single
write, then (every ``checkpoint_every`` steps) the log is fsynced and the whole state is checkpointed
(optimiser ``state_dict`` with its RNG and population, benchmark counters) by writing a temporary
file, fsyncing it, moving the current checkpoint to ``checkpoint.prev.pkl`` and ``os.replace``-ing
the new one in. Each checkpoint carries a SHA-256 of its payload.

On ``--resume`` (:func:`run_trial` with ``resume=True``):

1. the log is read; a torn last line or a step with missing lines (a write cut short by a crash) is
   moved to ``events.discarded.jsonl`` (kept, never deleted) and the log is rewritten without it;
2. the newest checkpoint that is intact (checksum, length, unpickling) and not ahead of the log is
   loaded — a truncated or corrupt one is reported with a warning and the previous one is used; if
   none is usable, the trial restarts from its seed;
3. the steps logged after that checkpoint are **replayed**: the optimiser is asked again (it is
   deterministic given its state), the logged evaluations are told instead of querying the
   benchmark, so no evaluation is repeated or lost. If the optimiser proposes something else than
   what was logged (a non-deterministic optimiser), the remaining logged steps are moved to
   ``events.discarded.jsonl`` with a warning and the run goes on live from there.

A directory without ``run.json`` is not a run directory; a run directory whose stored fingerprint
differs from the config's belongs to another config: both are clear :class:`RunDirError`\\ s.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .config import Config, ConfigError, config_from_dict, dump_toml, import_plugins, registry_entry

__all__ = ["RunDir", "RunDirError", "CheckpointError", "ResumeWarning", "TrialSpec", "run_trial",
           "save_checkpoint", "read_checkpoint", "load_checkpoint", "read_events", "result_from_events",
           "load_trial_results", "atomic_write", "build_benchmark", "build_optimiser", "RUN_FORMAT"]

RUN_FORMAT = "sdot-nas-run"
RUN_VERSION = 1
_MAGIC = b"SDOTNAS-CHECKPOINT 1 "


class RunDirError(ValueError):
    """A directory that is not a run directory, or one that belongs to another config."""


class CheckpointError(ValueError):
    """A checkpoint file that is missing, truncated or corrupt."""


class ResumeWarning(UserWarning):
    """Something recovered on resume (a corrupt checkpoint, a torn log line, a diverging replay)."""


# ---------------------------------------------------------------------------------------------------
# atomic files


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, data: bytes | str, *, keep_previous: Path | None = None) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same directory, fsync, ``os.replace``.

    With ``keep_previous``, the current file (if any) is first moved there.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    if keep_previous is not None and path.exists():
        os.replace(path, keep_previous)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def _dumps(obj: Any, indent: int | None = None) -> str:
    return json.dumps(obj, default=_json_default, indent=indent, allow_nan=True)


# ---------------------------------------------------------------------------------------------------
# checkpoints


def save_checkpoint(trial_dir: str | Path, state: dict[str, Any]) -> None:
    """Atomically write ``state`` as ``checkpoint.pkl``, keeping the previous one as ``checkpoint.prev.pkl``."""
    trial_dir = Path(trial_dir)
    payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    header = _MAGIC + f"{hashlib.sha256(payload).hexdigest()} {len(payload)}\n".encode()
    atomic_write(trial_dir / "checkpoint.pkl", header + payload, keep_previous=trial_dir / "checkpoint.prev.pkl")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and verify one checkpoint file; :class:`CheckpointError` says what is wrong with it."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    if not blob.startswith(_MAGIC):
        raise CheckpointError(f"{path} is not a sdot-nas checkpoint (bad header)")
    nl = blob.find(b"\n")
    try:
        digest, length = blob[len(_MAGIC):nl].decode().split()
        length = int(length)
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"{path} has a corrupt header") from None
    payload = blob[nl + 1:]
    if len(payload) != length:
        raise CheckpointError(f"{path} is truncated ({len(payload)} of {length} bytes)")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(f"{path} is corrupt (checksum mismatch)")
    try:
        state = pickle.loads(payload)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise CheckpointError(f"{path} cannot be unpickled: {exc}") from exc
    if not isinstance(state, dict) or "n_events" not in state:
        raise CheckpointError(f"{path} does not hold a trial state")
    return state


def load_checkpoint(trial_dir: str | Path, max_events: int | None = None,
                    fingerprint: str | None = None) -> dict[str, Any] | None:
    """The newest usable checkpoint of a trial (current, else previous), or None.

    A checkpoint that cannot be read, or that is ahead of the event log (``n_events > max_events``),
    is skipped with a :class:`ResumeWarning`. One whose fingerprint differs raises :class:`RunDirError`.
    """
    trial_dir = Path(trial_dir)
    for name in ("checkpoint.pkl", "checkpoint.prev.pkl"):
        path = trial_dir / name
        if not path.exists():
            if name == "checkpoint.pkl" and (trial_dir / "checkpoint.prev.pkl").exists():
                warnings.warn(f"{path} is missing (a crash between two renames); using the previous checkpoint",
                              ResumeWarning, stacklevel=2)
            continue
        try:
            state = read_checkpoint(path)
        except CheckpointError as exc:
            warnings.warn(f"{exc}; falling back to the previous checkpoint (the event log replays the rest)",
                          ResumeWarning, stacklevel=2)
            continue
        if fingerprint is not None and state.get("fingerprint") != fingerprint:
            raise RunDirError(f"{path} belongs to another config (fingerprint {state.get('fingerprint')!r:.14}, "
                              f"expected {fingerprint!r:.14})")
        if max_events is not None and state["n_events"] > max_events:
            warnings.warn(f"{path} records {state['n_events']} evaluations but the event log holds {max_events}; "
                          f"falling back to the previous checkpoint", ResumeWarning, stacklevel=2)
            continue
        return state
    return None


# ---------------------------------------------------------------------------------------------------
# event log


def read_events(path: str | Path, repair: bool = False) -> list[dict[str, Any]]:
    """The complete steps of an event log, as a list of event dicts.

    A torn last line or a last step with missing lines is incomplete: with ``repair`` it is moved to
    ``events.discarded.jsonl`` and the log rewritten without it (with a :class:`ResumeWarning`);
    otherwise it is just left out. A corrupt line *before* the last one raises :class:`RunDirError`.
    """
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    tail = lines.pop()                      # b"" when the file ends with a newline
    events: list[dict[str, Any]] = []
    bad_from: int | None = None
    for i, line in enumerate(lines):
        try:
            events.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            if i == len(lines) - 1:
                bad_from = i
                break
            raise RunDirError(f"{path}: line {i + 1} is corrupt and more lines follow it; the log cannot be "
                              f"trusted (move the file away to restart this trial)") from None
    keep = len(events)
    # drop a last step with missing lines (all lines of one step are written at once)
    if events:
        last = events[-1]
        first = next(j for j in range(len(events)) if events[j]["batch"] == last["batch"])
        if keep - first != last["batch_size"]:
            keep = first
    if tail or bad_from is not None or keep < len(events):
        dropped = lines[keep:] + ([tail] if tail else [])
        if repair:
            warnings.warn(f"{path}: the last step was cut short by a crash ({len(dropped)} incomplete line(s)); "
                          f"moved to events.discarded.jsonl, it will be run again", ResumeWarning, stacklevel=2)
            _discard(path, [ln for ln in dropped if ln])
            atomic_write(path, b"".join(ln + b"\n" for ln in lines[:keep]))
    return events[:keep]


def _discard(log: Path, lines: Iterable[bytes]) -> None:
    with open(log.with_name("events.discarded.jsonl"), "ab") as fh:
        for line in lines:
            fh.write(line.rstrip(b"\n") + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


class _EventLog:
    """Append-only writer; one ``write`` per step."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = open(path, "ab", buffering=0)

    def append(self, events: list[dict[str, Any]]) -> None:
        self._fh.write("".join(_dumps(e) + "\n" for e in events).encode())

    def sync(self) -> None:
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def result_from_events(events: list[dict[str, Any]], method: str, seed: int | None, optimum: float | None = None):
    """Rebuild a :class:`~hotnas.optimisers.base.SearchResult` from logged events."""
    from hotnas.benchmarks.base import Evaluation
    from hotnas.optimisers.base import SearchResult

    res = SearchResult(method=method, seed=seed, optimum=optimum)
    for e in events:
        res.add(Evaluation(e["arch"], e["value"], e.get("test"), e.get("cost", 1.0)), e.get("recommendation"),
                e["wall_clock"])
    return res


# ---------------------------------------------------------------------------------------------------
# building components


def _accepts(target: Any, name: str) -> bool:
    import inspect

    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def build_benchmark(name: str, options: dict[str, Any], seed: int | None = None, device: str | None = None):
    """A benchmark from the registry; ``seed``/``device`` are passed when its factory takes them."""
    from hotnas.benchmarks import get_benchmark

    entry = registry_entry("benchmark", name)
    kwargs = dict(options)
    if seed is not None and entry is not None and _accepts(entry, "seed") and "seed" not in kwargs:
        kwargs["seed"] = seed
    if device is not None and entry is not None and _accepts(entry, "device"):
        kwargs["device"] = device
    return get_benchmark(name, **kwargs)


def build_optimiser(name: str, space: Any, seed: int, options: dict[str, Any], device: str | None = None,
                    budget: int | None = None):
    """An optimiser from the registry; ``device`` and the query ``budget`` are passed when it takes them."""
    import hotnas.optimisers  # noqa: F401 - registers the library's optimisers
    from hotnas.optimisers.base import get_optimiser

    kwargs = dict(options)
    entry = registry_entry("optimiser", name)
    for key, value in (("device", device), ("budget", budget)):
        if value is not None and entry is not None and _accepts(entry, key):
            kwargs[key] = value
    return get_optimiser(name, space, seed=seed, **kwargs)


def _benchmark_state(bench: Any) -> dict[str, Any]:
    if hasattr(bench, "state_dict"):
        return {"state_dict": bench.state_dict()}
    return {"n_queries": bench.n_queries, "total_cost": bench.total_cost}


def _load_benchmark_state(bench: Any, state: dict[str, Any]) -> None:
    if "state_dict" in state:
        bench.load_state_dict(state["state_dict"])
    else:
        bench.n_queries = state["n_queries"]
        bench.total_cost = state["total_cost"]


def _masses(opt: Any) -> dict[str, float] | None:
    """Mass per architecture, for the mass plots: the optimiser's ``masses()`` or ``mass()`` (a flow:
    the fraction of particles on each architecture); logged on the last event line of each step."""
    fn = getattr(opt, "masses", None) or getattr(opt, "mass", None)
    if not callable(fn):
        return None
    m = fn()
    return {str(k): float(v) for k, v in dict(m).items()} if m else None


# ---------------------------------------------------------------------------------------------------
# one trial


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


Evaluator = Callable[[list[str]], list[Any]]


def run_trial(spec: TrialSpec, trial_dir: str | Path, resume: bool = False,
              evaluator: Callable[[Any, list[str]], list[Any]] | None = None,
              on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run (or, with ``resume``, continue) one trial in ``trial_dir``; return its result as a dict.

    ``evaluator(benchmark, archs)`` evaluates a step's architectures (default: ``benchmark.query``
    one after the other); ``on_step(n_new_evaluations)`` is called after each step (progress bars).
    The result equals ``run_search(optimiser, benchmark, budget, batch_size)`` of a fresh optimiser
    and benchmark, whether or not the trial was interrupted and resumed in between.
    """
    trial_dir = Path(trial_dir)
    done = trial_dir / "result.json"
    if resume and done.exists():
        return json.loads(done.read_text())
    trial_dir.mkdir(parents=True, exist_ok=True)
    log_path = trial_dir / "events.jsonl"
    if not resume and (log_path.exists() or (trial_dir / "checkpoint.pkl").exists()):
        raise RunDirError(f"{trial_dir} already holds a started trial; pass resume=True (--resume) to continue it")

    import_plugins(spec.plugins)
    bench = build_benchmark(spec.benchmark, spec.benchmark_options, seed=spec.seed, device=spec.device)
    opt = build_optimiser(spec.optimiser, bench.space, spec.seed, spec.options, device=spec.device,
                          budget=spec.budget)
    evaluate = evaluator or (lambda b, archs: [b.query(a) for a in archs])

    logged = read_events(log_path, repair=True) if resume else []
    ckpt = load_checkpoint(trial_dir, max_events=len(logged), fingerprint=spec.fingerprint) if resume else None
    n_batches, n_events, finished = 0, 0, False
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimiser"])
        _load_benchmark_state(bench, ckpt["benchmark"])
        n_batches, n_events, finished = ckpt["n_batches"], ckpt["n_events"], ckpt.get("finished", False)
    elif logged and any((trial_dir / n).exists() for n in ("checkpoint.pkl", "checkpoint.prev.pkl")):
        warnings.warn(f"{trial_dir}: no usable checkpoint; replaying all {len(logged)} logged evaluations from "
                      f"the seed", ResumeWarning, stacklevel=2)

    kept = logged[:n_events]
    result = result_from_events(kept, spec.label, spec.seed, bench.optimum)
    log = _EventLog(log_path)
    clock = [kept[-1]["wall_clock"] if kept else 0.0, time.perf_counter()]   # wall-clock offset, start

    def checkpoint() -> None:
        log.sync()
        save_checkpoint(trial_dir, {
            "version": RUN_VERSION, "fingerprint": spec.fingerprint, "trial": spec.trial_id, "seed": spec.seed,
            "n_batches": n_batches, "n_events": len(result.values), "finished": finished,
            "optimiser": opt.state_dict(), "benchmark": _benchmark_state(bench), "time": time.time()})

    def step(archs: list[str], evals: list[Any], asked: int, write: bool, walls: list[float] | None = None) -> None:
        nonlocal n_batches
        opt.tell(evals)
        rec = opt.recommend()
        masses = _masses(opt)
        lines = []
        for i, ev in enumerate(evals):
            wall = walls[i] if walls is not None else clock[0] + time.perf_counter() - clock[1]
            result.add(ev, rec, wall)
            lines.append({"batch": n_batches, "asked": asked, "batch_size": len(evals), "index": i,
                          "step": len(result.values) - 1, "method": spec.label, "seed": spec.seed,
                          "arch": ev.arch, "value": ev.value, "test": ev.test, "cost": ev.cost,
                          "best_so_far": result.best_so_far[-1], "test_of_best": result.test_of_best[-1],
                          "recommendation": rec, "wall_clock": wall,
                          "n_queries": bench.n_queries, "total_cost": bench.total_cost})
        if masses is not None:
            lines[-1]["masses"] = masses
        if write:
            log.append(lines)
        n_batches += 1

    try:
        # replay the steps logged after the checkpoint, without querying the benchmark
        from hotnas.benchmarks.base import Evaluation

        pending = logged[n_events:]
        while pending:
            batch = pending[:pending[0]["batch_size"]]
            archs = opt.ask(batch[0]["asked"])
            if list(archs) != [e["arch"] for e in batch]:
                warnings.warn(f"{trial_dir}: on replay the optimiser proposed {list(archs)[:3]} where the log has "
                              f"{[e['arch'] for e in batch][:3]} (it is not deterministic given its state); the "
                              f"{len(pending)} logged evaluation(s) from step {batch[0]['step']} on are moved to "
                              f"events.discarded.jsonl and run again", ResumeWarning, stacklevel=2)
                log.close()
                _discard(log_path, [_dumps(e).encode() for e in pending])
                atomic_write(log_path, "".join(_dumps(e) + "\n" for e in logged[:len(logged) - len(pending)]))
                # the optimiser has consumed an ask: restart it from the last consistent state
                return run_trial(spec, trial_dir, resume=True, evaluator=evaluator, on_step=on_step)
            evals = [Evaluation(e["arch"], e["value"], e.get("test"), e.get("cost", 1.0)) for e in batch]
            bench.n_queries += len(evals)
            bench.total_cost += sum(ev.cost for ev in evals)
            step(archs, evals, batch[0]["asked"], write=False, walls=[e["wall_clock"] for e in batch])
            pending = pending[len(batch):]
        if len(result.values) > n_events:
            checkpoint()
        clock[:] = [result.wall_clock[-1] if result.wall_clock else 0.0, time.perf_counter()]
        if on_step is not None and result.values:
            on_step(len(result.values))

        while not finished and len(result.values) < spec.budget:
            asked = min(spec.batch_size, spec.budget - len(result.values))
            archs = opt.ask(asked)
            if not archs:
                finished = True
                break
            evals = evaluate(bench, list(archs))
            step(list(archs), evals, asked, write=True)
            if on_step is not None:
                on_step(len(evals))
            if n_batches % spec.checkpoint_every == 0:
                checkpoint()
        finished = True
        checkpoint()
    finally:
        log.close()

    out = result.to_dict()
    out.update(trial=spec.trial_id, label=spec.label, optimiser=spec.optimiser, n_queries=bench.n_queries,
               total_cost=bench.total_cost, wall_time=result.wall_clock[-1] if result.wall_clock else 0.0)
    atomic_write(done, _dumps(out, indent=1))
    return out


# ---------------------------------------------------------------------------------------------------
# the run directory


class RunDir:
    """A run directory (see the module docstring). Use :meth:`create` or :meth:`open`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # -- identity
    @staticmethod
    def is_run_dir(path: str | Path) -> bool:
        return (Path(path) / "run.json").is_file()

    @classmethod
    def create(cls, path: str | Path, config: Config, *, overwrite: bool = False,
               command: list[str] | None = None) -> "RunDir":
        """A new run directory for ``config``. An existing run directory is replaced only with ``overwrite``;
        an existing non-empty directory that is not a run directory never is."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            if not cls.is_run_dir(path):
                raise RunDirError(f"{path} exists and is not a sdot-nas run directory (no run.json); choose another "
                                  f"--out, it will not be overwritten")
            if not overwrite:
                raise RunDirError(f"{path} already holds a run; pass --resume to continue it, --overwrite to start "
                                  f"it again, or choose another --out")
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "trials").mkdir(exist_ok=True)
        atomic_write(path / "config.toml", dump_toml(config.to_dict(), header=(
            f"Resolved config of this run (from {config.source or 'the Python API'}); "
            f"run it again with: sdot-nas run {path / 'config.toml'}")))
        atomic_write(path / "run.json", _dumps({
            "format": RUN_FORMAT, "version": RUN_VERSION, "fingerprint": config.fingerprint(),
            "name": config.name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(),
            "python": sys.version.split()[0], "command": command or []}, indent=1))
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        """An existing run directory; :class:`RunDirError` if ``path`` is not one."""
        path = Path(path)
        if not path.exists():
            raise RunDirError(f"{path} does not exist")
        if not path.is_dir():
            raise RunDirError(f"{path} is a file, not a run directory")
        marker = path / "run.json"
        if not marker.is_file():
            raise RunDirError(f"{path} is not a sdot-nas run directory (no run.json); pass the directory that "
                              f"'sdot-nas run' created (its --out)")
        try:
            meta = json.loads(marker.read_text())
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{marker} is corrupt: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format") != RUN_FORMAT:
            raise RunDirError(f"{marker} is not a sdot-nas run marker (format {meta.get('format') if isinstance(meta, dict) else None!r})")
        if meta.get("version", 0) > RUN_VERSION:
            raise RunDirError(f"{path} was written by a newer sdot-nas (run format {meta['version']}, this one "
                              f"reads {RUN_VERSION})")
        if not (path / "config.toml").is_file():
            raise RunDirError(f"{path} has no config.toml; it cannot be resumed or reported")
        return cls(path)

    @property
    def meta(self) -> dict[str, Any]:
        return json.loads((self.path / "run.json").read_text())

    def config(self, check_options: bool = False) -> Config:
        """The stored resolved config."""
        import tomllib

        raw = tomllib.loads((self.path / "config.toml").read_text())
        return config_from_dict(raw, str(self.path / "config.toml"), check_options=check_options)

    def check_config(self, config: Config) -> None:
        """:class:`RunDirError` naming the differing keys when ``config`` is not the one of this run."""
        stored = self.meta.get("fingerprint")
        if stored == config.fingerprint():
            return
        try:
            old = self.config().result_defining()
        except (ConfigError, OSError):
            old = {}
        diffs = _diff(old, config.result_defining())
        shown = "; ".join(f"{k}: stored {a!r}, now {b!r}" for k, a, b in diffs[:5]) or "fingerprints differ"
        raise RunDirError(f"{self.path} belongs to another config ({shown}); resume with the same config and "
                          f"flags (or 'sdot-nas run {self.path} --resume'), or choose another --out")

    # -- contents
    def trial_dir(self, trial_id: str) -> Path:
        return self.path / "trials" / trial_id

    def trial_ids(self) -> list[str]:
        d = self.path / "trials"
        return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write(self.path / "summary.json", _dumps(summary, indent=1))

    def summary(self) -> dict[str, Any] | None:
        p = self.path / "summary.json"
        return json.loads(p.read_text()) if p.exists() else None


def _diff(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(isinstance(x, dict) for x in a + b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += _diff(x, y, f"{prefix}[{i}]")
        return out
    return [] if a == b else [(prefix, a, b)]


def load_trial_results(run: RunDir) -> dict[str, dict[str, Any]]:
    """Every trial's result by trial id: ``result.json`` when finished, else rebuilt from its events
    (marked ``"partial": True``). Each carries its events' masses trace when the optimiser logged one."""
    out: dict[str, dict[str, Any]] = {}
    for tid in run.trial_ids():
        d = run.trial_dir(tid)
        events = read_events(d / "events.jsonl")
        if (d / "result.json").exists():
            res = json.loads((d / "result.json").read_text())
        elif events:
            label, _, seed = tid.rpartition("__seed")
            r = result_from_events(events, label, int(seed))
            res = r.to_dict()
            res.update(trial=tid, label=label, partial=True, n_queries=len(events),
                       total_cost=sum(e.get("cost", 1.0) for e in events),
                       wall_time=events[-1]["wall_clock"])
        else:
            continue
        res["masses"] = [(e["step"], e["masses"]) for e in events if "masses" in e]
        out[tid] = res
    return out
