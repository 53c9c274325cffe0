"""Executors: serial, process pool and Ray give identical results (per-task SeedSequence streams)."""

from __future__ import annotations

import importlib.util
import json

import pytest

import toy_components  # noqa: F401
from experiments.config import config_from_dict
from experiments.executors import _demo_draw, make_executor, map_seeded, task_seeds
from experiments.rundir import RunDir
from experiments.runner import run_config

HAS_RAY = importlib.util.find_spec("ray") is not None


def raw(executor: str, workers: int = 2, parallel: str = "trials") -> dict:
    return {
        "name": "toy",
        "plugins": ["toy_components"],
        "benchmark": {"name": "toy-bits", "options": {"n_bits": 7}},
        "search": {"budget": 9, "seeds": [0, 1, 2], "batch_size": 3},
        "methods": [{"optimiser": "toy-evolve"}, {"optimiser": "toy-random"}],
        "execution": {"executor": executor, "workers": workers, "parallel": parallel},
    }


def results(out) -> dict:
    run = RunDir.open(out)
    keys = ("archs", "values", "tests", "best_so_far", "recommendations")
    return {t: {k: json.loads((run.trial_dir(t) / "result.json").read_text())[k] for k in keys}
            for t in run.trial_ids()}


def test_task_streams_depend_on_the_task_only():
    a = [s.generate_state(2).tolist() for s in task_seeds(7, 4)]
    b = [s.generate_state(2).tolist() for s in task_seeds(7, 6)][:4]
    assert a == b and len({tuple(x) for x in a}) == 4


def test_unknown_executor_and_bad_workers():
    with pytest.raises(ValueError, match="unknown executor 'threads'"):
        make_executor("threads")
    with pytest.raises(ValueError, match="workers must be >= 0"):
        make_executor("process", -2)


def test_serial_equals_process_pool(tmp_path):
    with make_executor("serial") as ex:
        serial = map_seeded(ex, _demo_draw, range(8), seed=3)
    with make_executor("process", 2) as ex:
        pooled = map_seeded(ex, _demo_draw, range(8), seed=3)
    assert serial == pooled
    run_config(config_from_dict(raw("serial")), tmp_path / "serial", progress=False, report=False, log=lambda m: None)
    run_config(config_from_dict(raw("process")), tmp_path / "pool", progress=False, report=False, log=lambda m: None)
    run_config(config_from_dict(raw("process", parallel="evaluations")), tmp_path / "evals", progress=False,
               report=False, log=lambda m: None)
    assert results(tmp_path / "serial") == results(tmp_path / "pool") == results(tmp_path / "evals")


@pytest.mark.ray
@pytest.mark.skipif(not HAS_RAY, reason="Ray is not installed (optional extra: pip install 'sdot-nas[ray]')")
def test_serial_equals_ray(tmp_path):
    with make_executor("serial") as ex:
        serial = map_seeded(ex, _demo_draw, range(6), seed=5)
    with make_executor("ray", 2) as ex:      # starts a local Ray instance with 2 CPUs
        assert map_seeded(ex, _demo_draw, range(6), seed=5) == serial
        cfg = config_from_dict(raw("ray"))
        run_config(cfg, tmp_path / "ray", executor=ex, progress=False, report=False, log=lambda m: None)
    run_config(config_from_dict(raw("serial")), tmp_path / "serial", progress=False, report=False, log=lambda m: None)
    assert results(tmp_path / "serial") == results(tmp_path / "ray")
