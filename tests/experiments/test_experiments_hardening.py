"""Run-directory hardening (issue 15, section 2), each test reproducing a defect of the old code:
crafted checkpoints are refused without executing anything, --overwrite deletes only a verified run
directory's own files, a run directory is locked (concurrent resume refused, stale lock taken over),
process-pool workers die with their parent, finished evaluations are never re-run, garbled files are
rebuilt or a clear error, a sibling trial's checkpoint is never loaded."""

from __future__ import annotations

import json
import math
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import toy_components  # noqa: F401
from toy_components import raw_config
from experiments.cli import main
from experiments.config import config_from_dict, dump_toml
from experiments.rundir import (CheckpointError, ResumeWarning, RunDir, RunDirError, TrialSpec, decode_checkpoint,
                                encode_checkpoint, read_checkpoint, read_events, read_log, run_trial)
from experiments.runner import run_config

ROOT = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")])}
QUIET = dict(progress=False, report=False, log=lambda m: None)


def comparable(res: dict) -> dict:
    return {k: res[k] for k in ("archs", "values", "tests", "costs", "best_so_far", "test_of_best", "recommendations")}


def ledger(tmp_path: Path) -> list[str]:
    p = tmp_path / "ledger.txt"
    return p.read_text().splitlines() if p.exists() else []


class Crash(Exception):
    pass


class _Evil:
    """Unpickling this creates ``marker`` (what a crafted checkpoint could do with any code)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _crashed_trial(tmp_path: Path, at: int = 5, **kw) -> tuple[TrialSpec, dict, Path]:
    cfg = config_from_dict(raw_config(ledger=str(tmp_path / "ledger.txt"), **kw))
    s = TrialSpec.from_config(cfg)[0]
    reference = run_trial(s, tmp_path / "ref")
    (tmp_path / "ledger.txt").unlink()
    seen = [0]

    def on_step(k: int) -> None:
        seen[0] += k
        if seen[0] >= at:
            raise Crash
    with pytest.raises(Crash):
        run_trial(s, tmp_path / "t", on_step=on_step)
    return s, reference, tmp_path / "t"


# ---------------------------------------------------------------------------------------------------
# data-only checkpoints


@pytest.mark.parametrize("how", ["legacy-pkl", "pickle-as-npz", "object-array-npz"])
def test_crafted_checkpoint_is_refused_without_executing_anything(tmp_path, how):
    s, _, trial = _crashed_trial(tmp_path)
    marker = tmp_path / "pwned"
    evil = _Evil(str(marker))
    assert not marker.exists()
    if how == "legacy-pkl":                 # what the old code loaded with pickle.loads
        (trial / "checkpoint.pkl").write_bytes(pickle.dumps({"n_events": 0, "x": evil}))
        expect = "pickled checkpoint.*never loaded.*delete"
    elif how == "pickle-as-npz":
        (trial / "checkpoint.npz").write_bytes(pickle.dumps({"n_events": 0, "x": evil}))
        expect = "pickled data"
    else:
        import io

        buf = io.BytesIO()
        arr = np.empty(1, dtype=object)
        arr[0] = evil
        np.savez(buf, __state__=np.frombuffer(b"{}", np.uint8), __sha256__=np.frombuffer(b"0", np.uint8), a0=arr)
        (trial / "checkpoint.npz").write_bytes(buf.getvalue())
        expect = "object array"
    with pytest.raises(RunDirError, match=expect):
        run_trial(s, trial, resume=True)
    assert not marker.exists()


def test_crafted_checkpoint_through_the_cli(tmp_path, capsys):
    cfg = tmp_path / "toy.toml"
    cfg.write_text(dump_toml(raw_config(budget=4, seeds=(0,))))
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress", "--no-report"]) == 0
    trial = out / "trials" / "toy-evolve__seed0"
    (trial / "result.json").unlink()
    marker = tmp_path / "pwned"
    (trial / "checkpoint.pkl").write_bytes(pickle.dumps(_Evil(str(marker))))
    capsys.readouterr()
    assert main(["run", str(out), "--resume", "--no-progress", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "pickled checkpoint" in err and "Traceback" not in err and not marker.exists()


def test_checkpoint_codec_round_trips_state_exactly():
    import torch

    rng = np.random.default_rng(3)
    rng.random(5)
    mt = np.random.Generator(np.random.MT19937(1))
    gen = torch.Generator().manual_seed(7)
    state = {
        "tuple": (1, "a", 2.5), "set": {"x", "y"}, "frozen": frozenset({3}), "int_keys": {1: "one", (2, 3): [4]},
        "inf": math.inf, "ninf": -math.inf, "nan": math.nan, "big": 2**100, "none": None, "flag": True,
        "np_scalar": np.float32(1.5), "array": np.arange(6, dtype=np.int16).reshape(2, 3),
        "pcg": rng.bit_generator.state, "mt": mt.bit_generator.state,
        "tensor": torch.linspace(0, 1, 5, dtype=torch.float64), "bf16": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
        "torch_rng": gen.get_state(), "nested": [{"__sdot__": "not a tag"}],
    }
    back = decode_checkpoint(encode_checkpoint(state))
    assert back["tuple"] == (1, "a", 2.5) and back["set"] == {"x", "y"} and back["frozen"] == frozenset({3})
    assert back["int_keys"] == {1: "one", (2, 3): [4]} and back["big"] == 2**100
    assert back["inf"] == math.inf and back["ninf"] == -math.inf and math.isnan(back["nan"])
    assert back["none"] is None and back["flag"] is True and back["np_scalar"] == 1.5
    assert back["array"].dtype == np.int16 and np.array_equal(back["array"], state["array"])
    assert back["nested"] == [{"__sdot__": "not a tag"}]
    r2 = np.random.default_rng(0)
    r2.bit_generator.state = back["pcg"]
    assert r2.random() == rng.random()
    m2 = np.random.Generator(np.random.MT19937(0))
    m2.bit_generator.state = back["mt"]
    assert m2.random() == mt.random()
    assert torch.equal(back["tensor"], state["tensor"]) and back["bf16"].dtype == torch.bfloat16
    assert torch.equal(back["bf16"], state["bf16"])
    g2 = torch.Generator()
    g2.set_state(back["torch_rng"])
    assert torch.equal(torch.rand(3, generator=g2), torch.rand(3, generator=gen))
    with pytest.raises(TypeError, match=r"state\['bad'\]\[0\].*cannot store an object of type"):
        encode_checkpoint({"bad": [object()]})
    with pytest.raises(TypeError, match="dtype object"):
        encode_checkpoint({"bad": np.array([None, 1], dtype=object)})


def test_trainable_flow_state_survives_a_data_only_checkpoint():
    """The supernet flow's state (weights, velocity, numpy and torch RNG states) through the codec: the
    restored flow continues exactly as the original."""
    import torch

    from hotnas.benchmarks.trainable import DigitsBenchmark
    from hotnas.flow_trainable import TrainableFlow

    bench = DigitsBenchmark(seed=0)
    flow = TrainableFlow(bench.space, data=bench.data, config=bench.config, seed=1, n_particles=2)
    flow.step()
    back = decode_checkpoint(encode_checkpoint(flow.state_dict()))
    twin = TrainableFlow(bench.space, data=bench.data, config=bench.config, seed=99, n_particles=2)
    twin.load_state_dict(back)
    flow.step()
    twin.step()
    assert flow.archs == twin.archs and torch.equal(flow.theta, twin.theta)


def test_corrupt_checkpoint_header_variants(tmp_path):
    p = tmp_path / "c.npz"
    p.write_bytes(encode_checkpoint({"n_events": 1})[:-7])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_checkpoint(p)
    p.write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="not a sdot-nas checkpoint"):
        read_checkpoint(p)


# ---------------------------------------------------------------------------------------------------
# --overwrite


def test_overwrite_refuses_a_folder_with_a_bare_run_json(tmp_path, capsys):
    """The issue's reproduction: run.json = {} and a precious file; both used to be deleted."""
    v = tmp_path / "v"
    (v / "sub").mkdir(parents=True)
    (v / "run.json").write_text("{}")
    (v / "precious.txt").write_text("x")
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(dump_toml(raw_config(budget=3, seeds=(0,))))
    assert main(["run", str(cfg), "--out", str(v), "--overwrite", "--no-progress", "--no-report"]) == 2
    assert "not a sdot-nas run marker" in capsys.readouterr().err
    assert (v / "precious.txt").read_text() == "x" and (v / "sub").is_dir() and (v / "run.json").read_text() == "{}"


def test_overwrite_refuses_unknown_files_and_names_them(tmp_path, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(dump_toml(raw_config(budget=3, seeds=(0, 1))))
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress", "--no-report"]) == 0
    (out / "notes.txt").write_text("mine")
    (out / "trials" / "toy-random__seed0" / "analysis.ipynb").write_text("{}")
    capsys.readouterr()
    assert main(["run", str(cfg), "--out", str(out), "--overwrite", "--no-progress", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "notes.txt" in err and "trials/toy-random__seed0/analysis.ipynb" in err and "refuses" in err
    assert (out / "notes.txt").read_text() == "mine" and (out / "trials" / "toy-evolve__seed0" / "result.json").exists()
    # without them, --overwrite deletes the run's own files only, and starts again
    (out / "notes.txt").unlink()
    (out / "trials" / "toy-random__seed0" / "analysis.ipynb").unlink()
    cfg.write_text(dump_toml(raw_config(budget=3, seeds=(0,))))
    assert main(["run", str(cfg), "--out", str(out), "--overwrite", "--no-progress", "--no-report"]) == 0
    assert sorted(p.name for p in (out / "trials").iterdir()) == ["toy-evolve__seed0", "toy-random__seed0"]
    assert not (out / "run.lock").exists()


# ---------------------------------------------------------------------------------------------------
# the lock


def _wait_for(pred, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended early:\n{proc.stderr.read().decode()}")
        time.sleep(0.02)
    raise AssertionError("timed out")


def _eval_lines(out: Path) -> int:
    return sum(p.read_bytes().count(b'"kind": "eval"') for p in out.glob("trials/*/events.jsonl"))


def test_concurrent_resume_is_refused(tmp_path, capsys):
    """Process A runs the config; this test process, B, tries to resume the same directory meanwhile."""
    cfg = tmp_path / "toy.toml"
    cfg.write_text(dump_toml(raw_config(ledger=str(tmp_path / "ledger.txt"), delay=0.05, budget=8, seeds=(0,))))
    out = tmp_path / "run"
    a = subprocess.Popen([sys.executable, "-m", "experiments.cli", "run", str(cfg), "--out", str(out), "--no-progress",
                          "--no-report"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: _eval_lines(out) >= 1, proc=a)
        capsys.readouterr()
        assert main(["run", str(out), "--resume", "--no-progress", "--no-report"]) == 2
        err = capsys.readouterr().err
        assert f"in use by process {a.pid}" in err and "Traceback" not in err
        assert a.wait(timeout=120) == 0, a.stderr.read().decode()
    finally:
        if a.poll() is None:
            a.kill()
    for tid in RunDir.open(out).trial_ids():
        events = read_events(out / "trials" / tid / "events.jsonl")
        assert [e["step"] for e in events] == list(range(8))
    assert len(ledger(tmp_path)) == 16               # nothing evaluated twice
    assert not (out / "run.lock").exists()
    assert main(["run", str(out), "--resume", "--no-progress", "--no-report"]) == 0     # free again


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    import socket

    cfg = config_from_dict(raw_config(budget=3, seeds=(0,)))
    out = tmp_path / "run"
    run_config(cfg, out, **QUIET)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / "run.lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "start": None}))
    messages: list[str] = []
    run_config(cfg, out, resume=True, progress=False, report=False, log=messages.append)
    assert any("taken over" in m and f"process {dead.pid} is gone" in m for m in messages)
    assert not (out / "run.lock").exists()
    # a live holder is refused with its PID
    (out / "run.lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(), "start": None}))
    with pytest.raises(RunDirError, match=f"in use by process {os.getppid()}"):
        run_config(cfg, out, resume=True, **QUIET)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to list child processes")
def test_kill_9_of_the_cli_leaves_no_worker_alive(tmp_path):
    cfg = tmp_path / "toy.toml"
    raw = raw_config(delay=0.05, budget=40, seeds=(0, 1))
    raw["execution"] = {"executor": "process", "workers": 2}
    cfg.write_text(dump_toml(raw))
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", "run", str(cfg), "--out", str(out),
                             "--no-progress", "--no-report"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def children() -> list[int]:
        kids = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    stat = (d / "stat").read_text()
                except OSError:
                    continue
                if int(stat[stat.rindex(")") + 2:].split()[1]) == proc.pid:
                    kids.append(int(d.name))
        return kids

    try:
        _wait_for(lambda: _eval_lines(out) >= 4, proc=proc)
        kids = children()
        assert len(kids) >= 2
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()

    def alive(pid: int) -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return state[state.rindex(")") + 2] != "Z"
    deadline = time.time() + 10
    while time.time() < deadline and any(alive(k) for k in kids):
        time.sleep(0.05)
    assert not [k for k in kids if alive(k)], "workers outlived the killed CLI"
    n = _eval_lines(out)
    time.sleep(0.3)
    assert _eval_lines(out) == n                     # nobody writes into the run any more


# ---------------------------------------------------------------------------------------------------
# finished evaluations are never run again


def _crashing_evaluator(crash_at: int, before_tell: bool):
    """Evaluates like the default, but the process 'dies' at the crash_at-th evaluation (during it, or
    right after it when ``before_tell``: the step's evaluations are all done, tell has not run)."""
    count = [0]

    def evaluate(bench, archs, on_result=None):
        out = []
        for i, a in enumerate(archs):
            count[0] += 1
            if count[0] == crash_at and not before_tell:
                raise Crash                      # killed during this evaluation
            ev = bench.query(a)
            on_result(i, ev)
            out.append(ev)
            if count[0] == crash_at and before_tell:
                raise Crash
        return out
    return evaluate


@pytest.mark.parametrize("crash_at, before_tell", [(5, False), (6, True), (1, False), (3, True)])
def test_evaluations_finished_before_a_crash_are_not_run_again(tmp_path, crash_at, before_tell):
    cfg = config_from_dict(raw_config(ledger=str(tmp_path / "ledger.txt"), budget=9, batch_size=3))
    s = TrialSpec.from_config(cfg)[0]
    reference = run_trial(s, tmp_path / "ref")
    (tmp_path / "ledger.txt").unlink()
    with pytest.raises(Crash):
        run_trial(s, tmp_path / "t", evaluator=_crashing_evaluator(crash_at, before_tell))
    done_before = len(ledger(tmp_path))
    assert done_before == crash_at - (0 if before_tell else 1)
    events, pending = read_log(tmp_path / "t" / "events.jsonl")
    assert len(events) + len(pending) == done_before and len(pending) == done_before % 3 + (3 if before_tell and done_before % 3 == 0 else 0)
    resumed = run_trial(s, tmp_path / "t", resume=True)
    assert comparable(resumed) == comparable(reference)
    assert len(ledger(tmp_path)) == 9                # each architecture evaluated exactly once


# ---------------------------------------------------------------------------------------------------
# garbled files, temp files, siblings, messages


def test_garbled_result_summary_and_config_are_rebuilt(tmp_path, capsys):
    cfg = tmp_path / "toy.toml"
    cfg.write_text(dump_toml(raw_config(budget=4, seeds=(0,))))
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress", "--no-report"]) == 0
    trial = out / "trials" / "toy-evolve__seed0"
    good = json.loads((trial / "result.json").read_text())
    (trial / "result.json").write_text('{"archs": [')
    (out / "summary.json").write_text("{garbage")
    (out / "config.toml").write_text("name = [unclosed")
    (trial / ".checkpoint.npz.tmp-999999").write_bytes(b"half a checkpoint")
    capsys.readouterr()
    with pytest.warns(ResumeWarning) as record:
        assert main(["report", str(out), "--no-plots"]) == 0   # config, summary and result rebuilt for the report
        assert main(["run", str(out), "--resume", "--no-progress", "--no-report"]) == 0
    messages = " | ".join(str(w.message) for w in record)
    assert "config.toml is not valid TOML" in messages and "result.json is garbled" in messages
    assert "summary.json is garbled" in messages
    assert comparable(json.loads((trial / "result.json").read_text())) == comparable(good)
    assert json.loads((out / "summary.json").read_text())["trials"]["toy-evolve__seed0"]["queries"] == 4
    assert "toy-evolve" in (out / "config.toml").read_text()
    assert not list(trial.glob(".*.tmp-*"))
    assert "temporary file" in capsys.readouterr().out


def test_garbled_config_without_a_copy_is_a_clear_error(tmp_path, capsys):
    cfg = tmp_path / "toy.toml"
    cfg.write_text(dump_toml(raw_config(budget=3, seeds=(0,))))
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress", "--no-report"]) == 0
    meta = json.loads((out / "run.json").read_text())
    del meta["config"]                                # as an older run.json
    (out / "run.json").write_text(json.dumps(meta))
    (out / "config.toml").write_text("name = [unclosed")
    capsys.readouterr()
    assert main(["run", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "config.toml is not valid TOML" in err and "Traceback" not in err


def test_a_sibling_trials_checkpoint_is_never_loaded(tmp_path):
    cfg = config_from_dict(raw_config(ledger=str(tmp_path / "ledger.txt"), budget=8, seeds=(0,)))
    evolve, rnd = TrialSpec.from_config(cfg)
    reference = run_trial(evolve, tmp_path / "ref")
    run_trial(rnd, tmp_path / "sibling")
    (tmp_path / "ledger.txt").unlink()
    seen = [0]

    def on_step(k):
        seen[0] += k
        if seen[0] >= 4:
            raise Crash
    with pytest.raises(Crash):
        run_trial(evolve, tmp_path / "t", on_step=on_step)
    for name in ("checkpoint.npz", "checkpoint.prev.npz"):
        (tmp_path / "t" / name).write_bytes((tmp_path / "sibling" / name).read_bytes())
    with pytest.warns(ResumeWarning, match="belongs to trial 'toy-random__seed0'"):
        resumed = run_trial(evolve, tmp_path / "t", resume=True)
    assert comparable(resumed) == comparable(reference)
    assert len(ledger(tmp_path)) == 8
    # a sibling's event log is refused outright
    (tmp_path / "t2").mkdir()
    (tmp_path / "t2" / "events.jsonl").write_bytes((tmp_path / "sibling" / "events.jsonl").read_bytes())
    with pytest.raises(RunDirError, match="holds evaluations of another trial"):
        run_trial(evolve, tmp_path / "t2", resume=True)


def test_edited_run_dir_config_message_does_not_repeat_the_failing_command(tmp_path, capsys):
    cfg = tmp_path / "toy.toml"
    cfg.write_text(dump_toml(raw_config(budget=3, seeds=(0,))))
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress", "--no-report"]) == 0
    text = (out / "config.toml").read_text()
    (out / "config.toml").write_text(text.replace("budget = 3", "budget = 5"))
    capsys.readouterr()
    assert main(["run", str(out), "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "search.budget: stored 3, now 5" in err and "was edited" in err
    assert "--out NEW_DIR" in err and f"sdot-nas run {out} --resume" not in err


def test_empty_plugin_name_is_a_clear_error(tmp_path, capsys):
    raw = raw_config(budget=3, seeds=(0,))
    raw["plugins"] = ["toy_components", ""]
    cfg = tmp_path / "p.toml"
    cfg.write_text(dump_toml(raw))
    assert main(["run", str(cfg), "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sdot-nas: error:") and "plugin ''" in err and "Traceback" not in err


def test_run_format_1_logs_are_still_read(tmp_path):
    """Older run directories (one line per evaluation, written per step) keep their reports and exports;
    an incomplete last step of such a log is left out."""
    from experiments.rundir import load_trial_results

    cfg = config_from_dict(raw_config(budget=4, seeds=(0,)))
    out = tmp_path / "old"
    run_config(cfg, out, **QUIET)
    log = out / "trials" / "toy-evolve__seed0" / "events.jsonl"
    events = read_events(log)
    v1 = [{k: v for k, v in e.items() if k not in ("kind",)} | {"batch_size": 1} for e in events]
    v1.append(dict(v1[-1], batch=99, batch_size=2, step=4))       # half of a 2-evaluation step
    log.write_text("".join(json.dumps(e) + "\n" for e in v1))
    (log.parent / "result.json").unlink()
    again, pending = read_log(log)
    assert [e["arch"] for e in again] == [e["arch"] for e in events] and pending == []
    assert [e["best_so_far"] for e in again] == [e["best_so_far"] for e in events]
    res = load_trial_results(RunDir.open(out))["toy-evolve__seed0"]
    assert res["partial"] and res["archs"] == [e["arch"] for e in events]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to list child processes")
def test_ctrl_c_stops_the_workers_at_once_and_says_so(tmp_path):
    cfg = tmp_path / "toy.toml"
    raw = raw_config(delay=0.5, budget=40, seeds=(0, 1))  # each trial would need about 20 s more
    raw["execution"] = {"executor": "process", "workers": 2}
    cfg.write_text(dump_toml(raw))
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "experiments.cli", "run", str(cfg), "--out", str(out),
                             "--no-progress", "--no-report"], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_for(lambda: _eval_lines(out) >= 2, proc=proc)
        t0 = time.time()
        os.kill(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=15)
        waited = time.time() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and waited < 10, (waited, stderr)
    said = stdout + stderr
    assert "stopping 2 worker process(es)" in said and "--resume" in said, said
