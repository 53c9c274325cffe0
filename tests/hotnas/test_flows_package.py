"""hotnas.flows: one home for every flow (issue 14) — imports, sizes, defaults, the one result type, shims."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import hotnas.flows as flows

ROOT = Path(__file__).resolve().parents[2]
MODULES = ["hotnas.flows." + p.stem for p in sorted((ROOT / "hotnas" / "flows").glob("*.py")) if p.stem != "__init__"]


@pytest.mark.parametrize("module", MODULES + ["sdot.jump", "hotnas.training"])
def test_each_module_imports_first_in_a_fresh_process(module):
    # no import cycle: each module can be the first one imported
    r = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_module_sizes():
    for p in list((ROOT / "hotnas" / "flows").glob("*.py")) + [ROOT / "sdot" / "jump.py", ROOT / "hotnas" / "training.py"]:
        assert len(p.read_text().splitlines()) <= 700, p


def test_the_base_defines_the_one_result_type_without_importing_a_subclass():
    src = (ROOT / "hotnas" / "flows" / "base.py").read_text()
    assert "from .trainable" not in src and "from .independent" not in src   # no import of a subclass module
    from hotnas.flow_independent import IndependentFlowResult
    from hotnas.flow_trainable import TrainableFlowResult
    from hotnas.flows.base import FlowResult

    assert IndependentFlowResult is FlowResult and TrainableFlowResult is FlowResult
    res = FlowResult(best_arch=None, val_acc=None, test_acc=None, flow_epochs=2.5)
    assert res.supernet_epochs == 2.5
    with pytest.raises(AttributeError):
        res.supernet_epochs = 1.0                               # read-only alias


def test_defaults_are_read_from_the_constructors():
    from hotnas.flows.tabular import FlowOptimiser

    d = flows.defaults("flow")
    assert d["n_particles"] == 20 and d["temperature"] == (0.3, 0.03) and d["law"] == "glauber"
    assert d == {k: p.default for k, p in inspect.signature(FlowOptimiser.__init__).parameters.items()
                 if p.default is not inspect.Parameter.empty and k != "seed"}
    for name in flows.FLOWS:
        assert flows.defaults(name)
    with pytest.raises(ValueError, match="unknown flow"):
        flows.defaults("flw")


def test_the_supernet_optimiser_takes_the_trainable_flow_defaults():
    # written once, in TrainableFlow; the optimiser's signature refers to them (eval_every, device and the
    # graph's lengthscale its own: the uniform graph, measured for issue 19)
    t, s = flows.defaults("trainable"), flows.defaults("supernet-flow")
    assert s["lengthscale"] == math.inf and t["lengthscale"] == 0.1
    shared = set(t) & set(s) - {"eval_every", "device", "lengthscale"}
    assert shared and {k: t[k] for k in shared} == {k: tuple(s[k]) if isinstance(s[k], tuple) else s[k] for k in shared}


def test_old_paths_re_export_the_same_objects():
    import hotnas.flow_base as fb
    import hotnas.optimisers.flow as f
    import hotnas.optimisers.flow_bo as fbo
    import hotnas.optimisers.supernet_flow as sf
    from hotnas.flows import base, potentials, schedules, supernet_optimiser, surrogate, tabular

    assert f.FlowOptimiser is tabular.FlowOptimiser and f.temperature_schedule is schedules.temperature_schedule
    assert f.table_potential is potentials.table_potential and f.robust_spread is potentials.robust_spread
    assert fbo.FlowBO is surrogate.FlowBO and sf.SupernetFlowOptimiser is supernet_optimiser.SupernetFlowOptimiser
    assert fb.FlowBase is base.FlowBase
    from hotnas.optimisers import OPTIMISERS

    assert OPTIMISERS.load("flow") is tabular.FlowOptimiser and OPTIMISERS.load("flow-bo") is surrogate.FlowBO


def test_graph_propose_is_the_flows_proposal():
    from hotnas.graph import ArchitectureGraph
    from hotnas.spaces.nb201 import NB201Space

    space = NB201Space()
    G = ArchitectureGraph(space, distance=lambda a, b: np.arange(len(a), dtype=float) % 3, lengthscale=1.0)
    a = space.sample(np.random.default_rng(0))
    names, w = G.neighbours(a)
    r1, r2 = np.random.default_rng(4), np.random.default_rng(4)
    for _ in range(20):
        b, deg = G.propose(a, r1)
        assert b == names[int(r2.choice(len(names), p=w / w.sum()))] and deg == pytest.approx(w.sum())
    assert G.sample_neighbour(a, np.random.default_rng(1)) == G.propose(a, np.random.default_rng(1))[0]
