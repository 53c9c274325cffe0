"""Trial results as stored: ``result.json`` of finished trials, rebuilt from the event log for the others."""

from __future__ import annotations

import json
import warnings
from typing import Any

from .events import read_events, result_from_events
from .files import ResumeWarning
from .layout import RunDir

__all__ = ["load_trial_results"]


def load_trial_results(run: RunDir) -> dict[str, dict[str, Any]]:
    """Every trial's result by trial id: ``result.json`` when finished, else rebuilt from its events
    (marked ``"partial": True``; a garbled ``result.json`` is rebuilt the same way, with a warning).
    Each carries its events' masses trace when the optimiser logged one."""
    out: dict[str, dict[str, Any]] = {}
    for tid in run.trial_ids():
        d = run.trial_dir(tid)
        events = read_events(d / "events.jsonl")
        res = None
        if (d / "result.json").exists():
            try:
                res = json.loads((d / "result.json").read_text())
                if not isinstance(res, dict) or "values" not in res:
                    raise ValueError("not a trial result")
            except (ValueError, UnicodeDecodeError) as exc:
                warnings.warn(f"{d / 'result.json'} is garbled ({exc}); rebuilt from the event log", ResumeWarning,
                              stacklevel=2)
                res = None
        had_result = res is not None or (d / "result.json").exists()
        if res is None and events:
            label, _, seed = tid.rpartition("__seed")
            r = result_from_events(events, label, int(seed) if seed.isdigit() else None)
            res = r.to_dict()
            res.update(trial=tid, label=label, partial=not had_result, n_queries=len(events),
                       total_cost=sum(e.get("cost", 1.0) for e in events),
                       wall_time=events[-1]["wall_clock"])
        if res is None:
            continue
        res["masses"] = [(e["step"], e["masses"]) for e in events if "masses" in e]
        out[tid] = res
    return out
