"""The event log ``events.jsonl``: appended, never rewritten in place (but for repairs); the source of truth.

One step of a trial is ``ask -> query -> tell -> recommend``. Each evaluation is appended as an
``"eval"`` line (one ``write``) the moment it finishes — fsynced at once when it took longer than
:data:`~experiments.rundir.files.SYNC_AFTER_S` (a training), else with the next checkpoint — and the
step is closed by a ``"step"`` line (recommendation, benchmark counters, masses) after ``tell``.

Run format 2: ``{"kind": "eval", ...}`` one line per evaluation, written when it finishes;
``{"kind": "step", ...}`` one line per step, after tell. Run format 1 (older runs, read for reports and
resumes): one line per evaluation, written per step.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Iterable

from .files import ResumeWarning, RunDirError, atomic_write, dumps

__all__ = ["read_log", "read_events", "EventLog", "result_from_events", "truncate_log", "logged_steps", "discard"]

_STEP_KEYS = ("recommendation", "n_queries", "total_cost")


def read_log(path: str | Path, repair: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(events, pending)`` of an event log.

    ``events``: one dict per evaluation of the *closed* steps, in order, each with ``step`` (its index),
    ``best_so_far``, ``test_of_best``, ``recommendation``, the benchmark counters and, on the last
    evaluation of a step, the optimiser's ``masses`` when it logged them. ``pending``: the evaluation
    lines of a last step that was not closed (its evaluations finished, the process died before
    ``tell``), sorted by their index in the step.

    A torn last line (a write cut short) is incomplete: with ``repair`` it is moved to
    ``events.discarded.jsonl`` and the log rewritten without it (with a :class:`ResumeWarning`);
    otherwise it is just left out. A corrupt line *before* the last one, or lines out of order,
    raise :class:`RunDirError`.
    """
    path = Path(path)
    if not path.exists():
        return [], []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    tail = lines.pop()                      # b"" when the file ends with a newline
    parsed: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError):
            if i == len(lines) - 1:
                tail = line + (b"\n" + tail if tail else b"")
                lines = lines[:i]
                break
            raise RunDirError(f"{path}: line {i + 1} is corrupt and more lines follow it; the log cannot be "
                              f"trusted (move the file away to restart this trial)") from None
        parsed.append(rec)

    events: list[dict[str, Any]] = []
    open_batch: dict[int, dict[str, Any]] = {}   # index -> eval line of the step not closed yet
    open_id: int | None = None
    v1_batch: list[dict[str, Any]] = []
    keep = len(parsed)                          # lines kept (format 1 may drop an incomplete last step)
    best, test_best = -math.inf, None

    def add(e: dict[str, Any], step_info: dict[str, Any] | None) -> None:
        nonlocal best, test_best
        e = dict(e)
        e.pop("kind", None)
        e["step"] = len(events)
        if e["value"] > best or not events:
            best, test_best = e["value"], e.get("test")
        e["best_so_far"], e["test_of_best"] = best, test_best
        if step_info is not None:
            for k in _STEP_KEYS:
                e[k] = step_info.get(k)
        events.append(e)

    for j, rec in enumerate(parsed):
        kind = rec.get("kind")
        if kind is None:                        # format 1
            v1_batch.append(rec)
            if len(v1_batch) == rec.get("batch_size", 1):
                for e in v1_batch:
                    add(e, e)
                v1_batch = []
        elif kind == "eval":
            if open_id is None:
                open_id = rec["batch"]
            elif rec["batch"] != open_id:
                raise RunDirError(f"{path}: line {j + 1} starts step {rec['batch']} before step {open_id} was "
                                  f"closed; the log cannot be trusted (move the file away to restart this trial)")
            if rec["index"] in open_batch and open_batch[rec["index"]]["arch"] != rec["arch"]:
                raise RunDirError(f"{path}: line {j + 1} logs evaluation {rec['index']} of step {open_id} twice "
                                  f"with different architectures; the log cannot be trusted")
            open_batch[rec["index"]] = rec
        elif kind == "step":
            if open_id != rec["batch"] or len(open_batch) != rec["batch_size"]:
                raise RunDirError(f"{path}: line {j + 1} closes step {rec['batch']} with {len(open_batch)} of "
                                  f"{rec['batch_size']} evaluations logged; the log cannot be trusted")
            batch = [open_batch[i] for i in sorted(open_batch)]
            for i, e in enumerate(batch):
                add(e, rec)
                if i == len(batch) - 1 and "masses" in rec:
                    events[-1]["masses"] = rec["masses"]
            open_batch, open_id = {}, None
        else:
            raise RunDirError(f"{path}: line {j + 1} has an unknown kind {kind!r}")
    if v1_batch:                                # format 1: a step with missing lines is dropped
        keep = len(parsed) - len(v1_batch)
    pending = [open_batch[i] for i in sorted(open_batch)]
    if tail or keep < len(parsed):
        dropped = lines[keep:] + ([tail] if tail else [])
        if repair:
            warnings.warn(f"{path}: the last line(s) were cut short by a crash ({len(dropped)} incomplete line(s)); "
                          f"moved to events.discarded.jsonl", ResumeWarning, stacklevel=2)
            discard(path, [ln for ln in dropped if ln])
            atomic_write(path, b"".join(ln + b"\n" for ln in lines[:keep]))
    return events, pending


def read_events(path: str | Path, repair: bool = False) -> list[dict[str, Any]]:
    """The evaluations of the closed steps of an event log (see :func:`read_log`)."""
    return read_log(path, repair=repair)[0]


def discard(log: Path, lines: Iterable[bytes]) -> None:
    with open(log.with_name("events.discarded.jsonl"), "ab") as fh:
        for line in lines:
            fh.write(line.rstrip(b"\n") + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


class EventLog:
    """Append-only writer; one unbuffered ``write`` per line group."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = open(path, "ab", buffering=0)

    def append(self, events: list[dict[str, Any]], sync: bool = False) -> None:
        self._fh.write("".join(dumps(e) + "\n" for e in events).encode())
        if sync:
            self.sync()

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


def truncate_log(log_path: Path, keep_steps: int) -> None:
    """Keep the lines of the first ``keep_steps`` closed steps; move the rest to ``events.discarded.jsonl``."""
    lines = [ln for ln in log_path.read_bytes().split(b"\n") if ln]
    closed, cut, v1 = 0, 0, 0
    for j, line in enumerate(lines):
        if closed == keep_steps:
            break
        rec = json.loads(line)
        kind = rec.get("kind")
        if kind == "step":
            closed += 1
        elif kind is None:
            v1 += 1
            if v1 == rec.get("batch_size", 1):
                closed, v1 = closed + 1, 0
        cut = j + 1
    if closed < keep_steps:
        cut = len(lines)
    discard(log_path, lines[cut:])
    atomic_write(log_path, b"".join(ln + b"\n" for ln in lines[:cut]))


def logged_steps(events: list[dict[str, Any]], pending: list[dict[str, Any]]) -> list[Any]:
    """The steps of logged evaluations (closed ones, then the open one of ``pending``) as
    :class:`~hotnas.optimisers.base.LoggedStep`\\ s, what :func:`~hotnas.optimisers.base.run_search` replays."""
    from hotnas.benchmarks.base import Evaluation
    from hotnas.optimisers.base import LoggedEvaluation, LoggedStep

    def logged(index: int, e: dict[str, Any]) -> LoggedEvaluation:
        ev = Evaluation(e["arch"], e["value"], e.get("test"), e.get("cost", 1.0))
        return LoggedEvaluation(index, ev, e["wall_clock"], e.get("proposed"))

    groups: list[list[dict[str, Any]]] = []
    for e in events:
        if groups and groups[-1][0]["batch"] == e["batch"]:
            groups[-1].append(e)
        else:
            groups.append([e])
    steps = [LoggedStep(g[0]["asked"], len(g), [logged(i, e) for i, e in enumerate(g)]) for g in groups]
    if pending:
        steps.append(LoggedStep(pending[0]["asked"], pending[0]["batch_size"],
                                [logged(e["index"], e) for e in pending], closed=False))
    return steps
