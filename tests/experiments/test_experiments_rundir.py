"""Run directories: resume after a crash or SIGKILL equals an uninterrupted run, with no evaluation lost or
repeated; corrupt/truncated checkpoints and torn log lines are recovered; wrong directories are refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import toy_components  # noqa: F401
from toy_components import raw_config
from experiments.config import config_from_dict
from experiments.rundir import (CheckpointError, ResumeWarning, RunDir, RunDirError, TrialSpec, read_checkpoint,
                                read_events, run_trial)
from experiments.runner import run_config
from hotnas.optimisers.base import get_optimiser, run_search

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]


def spec(tmp_path: Path, **kw) -> TrialSpec:
    ledger = str(tmp_path / "ledger.txt")
    cfg = config_from_dict(raw_config(ledger=ledger, **kw))
    return TrialSpec.from_config(cfg)[0]      # toy-evolve, seed 0


def comparable(res: dict) -> dict:
    keys = ("archs", "values", "tests", "costs", "best_so_far", "test_of_best", "recommendations")
    return {k: res[k] for k in keys}


def ledger_lines(tmp_path: Path) -> list[str]:
    p = tmp_path / "ledger.txt"
    return p.read_text().splitlines() if p.exists() else []


class Crash(Exception):
    pass


def crash_after(n: int):
    seen = [0]

    def on_step(k: int) -> None:
        seen[0] += k
        if seen[0] >= n:
            raise Crash
    return on_step


def test_trial_equals_run_search(tmp_path):
    s = spec(tmp_path, batch_size=3)
    out = run_trial(s, tmp_path / "t")
    bench = toy_components.ToyBenchmark(n_bits=7, seed=0)
    ref = run_search(get_optimiser("toy-evolve", bench.space, seed=0, population=4), bench, budget=10, batch_size=3)
    assert comparable(out) == comparable(ref.to_dict())
    events = read_events(tmp_path / "t" / "events.jsonl")
    assert [e["step"] for e in events] == list(range(10))
    assert {"arch", "value", "best_so_far", "recommendation", "wall_clock", "seed", "masses"} <= set(events[-1])


@pytest.mark.parametrize("crash_at", [1, 4, 7])
def test_crash_between_checkpoints_replays_the_log(tmp_path, crash_at):
    s = spec(tmp_path, checkpoint_every=3)
    reference = run_trial(s, tmp_path / "ref")
    n_ref = len(ledger_lines(tmp_path))
    (tmp_path / "ledger.txt").unlink()
    with pytest.raises(Crash):            # dies after the step is logged, before its checkpoint
        run_trial(s, tmp_path / "t", on_step=crash_after(crash_at))
    assert len(read_events(tmp_path / "t" / "events.jsonl")) == crash_at
    resumed = run_trial(s, tmp_path / "t", resume=True)
    assert comparable(resumed) == comparable(reference)
    assert len(ledger_lines(tmp_path)) == n_ref == 10     # logged evaluations were replayed, not re-queried
    assert resumed["n_queries"] == reference["n_queries"] == 10


def _crashed_trial(tmp_path: Path, at: int = 7) -> tuple[TrialSpec, dict]:
    s = spec(tmp_path, checkpoint_every=3)
    reference = run_trial(s, tmp_path / "ref")
    (tmp_path / "ledger.txt").unlink()
    with pytest.raises(Crash):
        run_trial(s, tmp_path / "t", on_step=crash_after(at))
    return s, reference


def test_corrupt_checkpoint_falls_back_to_the_previous_one(tmp_path):
    s, reference = _crashed_trial(tmp_path)
    ckpt = tmp_path / "t" / "checkpoint.npz"
    blob = bytearray(ckpt.read_bytes())
    blob[len(blob) // 3] ^= 0xFF          # inside a member: the zip CRC or the SHA-256 catches it
    ckpt.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="corrupt"):
        read_checkpoint(ckpt)
    with pytest.warns(ResumeWarning, match="corrupt.*falling back to the previous checkpoint"):
        resumed = run_trial(s, tmp_path / "t", resume=True)
    assert comparable(resumed) == comparable(reference)
    assert len(ledger_lines(tmp_path)) == 10


def test_truncated_checkpoints_fall_back_then_replay_from_the_seed(tmp_path):
    s, reference = _crashed_trial(tmp_path)
    for name in ("checkpoint.npz", "checkpoint.prev.npz"):
        p = tmp_path / "t" / name
        p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    with pytest.warns(ResumeWarning) as record:
        resumed = run_trial(s, tmp_path / "t", resume=True)
    messages = " | ".join(str(w.message) for w in record)
    assert "truncated" in messages and "replaying all 7 logged evaluations" in messages
    assert comparable(resumed) == comparable(reference)
    assert len(ledger_lines(tmp_path)) == 10


def test_torn_last_log_line_is_set_aside_and_run_again(tmp_path):
    s, reference = _crashed_trial(tmp_path)
    log = tmp_path / "t" / "events.jsonl"
    with open(log, "ab") as fh:
        fh.write(b'{"batch": 7, "asked": 1, "batch_si')
    with pytest.warns(ResumeWarning, match="cut short"):
        resumed = run_trial(s, tmp_path / "t", resume=True)
    assert comparable(resumed) == comparable(reference)
    assert (tmp_path / "t" / "events.discarded.jsonl").read_bytes().startswith(b'{"batch": 7')
    assert [e["step"] for e in read_events(log)] == list(range(10))


def test_corrupt_line_inside_the_log_is_a_clear_error(tmp_path):
    s, _ = _crashed_trial(tmp_path)
    log = tmp_path / "t" / "events.jsonl"
    lines = log.read_bytes().split(b"\n")
    lines[2] = b"garbage"
    log.write_bytes(b"\n".join(lines))
    with pytest.raises(RunDirError, match="line 3 is corrupt"):
        run_trial(s, tmp_path / "t", resume=True)


def test_not_a_run_directory(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        RunDir.open(tmp_path / "nothing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="is a file"):
        RunDir.open(tmp_path / "file")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not a sdot-nas run directory"):
        RunDir.open(tmp_path / "other")
    cfg = config_from_dict(raw_config())
    with pytest.raises(RunDirError, match="not a sdot-nas run directory.*will not be overwritten"):
        run_config(cfg, tmp_path / "other", progress=False, report=False, log=lambda m: None)
    with pytest.raises(RunDirError, match="not a sdot-nas run directory"):
        run_config(cfg, tmp_path / "other", resume=True, progress=False, report=False, log=lambda m: None)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "run.json").write_text('{"format": "something-else"}')
    with pytest.raises(RunDirError, match="not a sdot-nas run marker"):
        RunDir.open(tmp_path / "fake")


def test_run_directory_of_another_config(tmp_path):
    out = tmp_path / "run"
    cfg = config_from_dict(raw_config(budget=4, seeds=(0,)))
    run_config(cfg, out, progress=False, report=False, log=lambda m: None)
    with pytest.raises(RunDirError, match="already holds a run; pass --resume"):
        run_config(cfg, out, progress=False, report=False, log=lambda m: None)
    other = config_from_dict(raw_config(budget=5, seeds=(0,)))
    with pytest.raises(RunDirError, match=r"belongs to another config \(search.budget: stored 4, now 5"):
        run_config(other, out, resume=True, progress=False, report=False, log=lambda m: None)
    # a trial checkpoint that belongs to another config is refused too
    trial = out / "trials" / "toy-evolve__seed0"
    (trial / "result.json").unlink()
    with pytest.raises(RunDirError, match="checkpoint.npz belongs to another config"):
        run_trial(TrialSpec.from_config(other)[0], trial, resume=True)


def _kill_when(out: Path, n_events: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        logs = list(out.glob("trials/*/events.jsonl"))
        if sum(p.read_bytes().count(b'"kind": "eval"') for p in logs) >= n_events:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before it could be killed:\n{proc.stderr.read().decode()}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the run made no progress")


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path):
    """The issue's test: SIGKILL a run in a subprocess mid-way, resume it, compare with an uninterrupted run."""
    killed_dir, ref_dir = tmp_path / "killed", tmp_path / "ref"
    raw = raw_config(ledger=str(tmp_path / "ledger.txt"), delay=0.03, budget=12, checkpoint_every=4)
    cfg_path = tmp_path / "toy.toml"
    from experiments.config import dump_toml

    cfg_path.write_text(dump_toml(raw))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "experiments.cli", "run", str(cfg_path), "--out", str(killed_dir), "--no-report",
           "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _kill_when(killed_dir, 18, proc)                     # 48 evaluations in all: killed in the second trial
    assert proc.returncode == -signal.SIGKILL
    before = sum(len(read_events(p)) for p in killed_dir.glob("trials/*/events.jsonl"))
    assert 17 <= before < 48           # the 18th step may be closed or not
    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    performed = ledger_lines(tmp_path)

    (tmp_path / "ledger.txt").unlink()
    run_config(config_from_dict(raw), ref_dir, progress=False, report=False, log=lambda m: None)
    run_k, run_r = RunDir.open(killed_dir), RunDir.open(ref_dir)
    assert run_k.trial_ids() == run_r.trial_ids() and len(run_k.trial_ids()) == 4
    for tid in run_r.trial_ids():
        a = json.loads((run_k.trial_dir(tid) / "result.json").read_text())
        b = json.loads((run_r.trial_dir(tid) / "result.json").read_text())
        assert comparable(a) == comparable(b), tid
        events = read_events(run_k.trial_dir(tid) / "events.jsonl")
        assert [e["step"] for e in events] == list(range(12)), tid      # none lost, none twice
        assert len({e["arch"] for e in events}) == 12
    # every evaluation is logged the moment it finishes: none was done twice (the one in flight at the
    # kill had not finished: its ledger line is written when it finishes)
    assert len(performed) == 48
    summary = json.loads((killed_dir / "summary.json").read_text())
    assert set(summary["trials"]) == set(run_r.trial_ids())
