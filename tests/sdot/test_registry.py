"""One Registry class for every registry: lazy loading, one duplicate rule, did-you-mean, metadata."""

from __future__ import annotations

import types

import numpy as np
import pytest

from sdot.registry import REGISTRIES, Registry, same_definition


def test_lazy_entry_loaded_on_first_use_and_replaced():
    reg = Registry("t_lazy", package="sdot", listed=False)
    reg.register("glauber", ".rates:glauber")
    assert isinstance(reg.peek("glauber"), str)  # nothing imported yet
    law = reg.load("glauber")
    from sdot.rates import glauber

    assert law is glauber and reg.peek("glauber") is glauber
    reg.register("nested", "sdot.schedules:Geometric.__call__")  # dotted attribute path
    assert callable(reg.load("nested"))
    reg.register("broken", ".no_such_module:thing")
    with pytest.raises(ImportError, match="broken.*no_such_module"):
        reg.load("broken")


def test_duplicate_rule_same_object_idempotent_different_object_raises():
    reg = Registry("t_dup", listed=False)

    def f(x):
        return x

    def g(x):
        return -x

    reg.register("f", f)
    reg.register("f", f)  # the same object again: no-op
    assert reg.load("f") is f
    with pytest.raises(ValueError, match="already registered"):
        reg.register("f", g)
    reg.register("f", g, replace=True)
    assert reg.load("f") is g


def test_reimported_module_counts_as_same_definition():
    src = "class Thing:\n    pass\n\ndef fn(a, b):\n    return 0.0\n"
    m1, m2 = types.ModuleType("plugin_x"), types.ModuleType("plugin_x")
    exec(compile(src, "plugin_x.py", "exec"), m1.__dict__)
    exec(compile(src, "plugin_x.py", "exec"), m2.__dict__)
    assert m1.Thing is not m2.Thing and same_definition(m1.Thing, m2.Thing)
    assert same_definition(m1.fn, m2.fn)
    m3 = types.ModuleType("plugin_y")
    exec(compile(src, "plugin_y.py", "exec"), m3.__dict__)
    assert not same_definition(m1.Thing, m3.Thing)  # same name, another module: a different object
    reg = Registry("t_reimport", listed=False)
    reg.register("thing", m1.Thing)
    reg.register("thing", m2.Thing)  # a plugin imported twice does not raise
    assert reg.load("thing") is m2.Thing
    with pytest.raises(ValueError, match="already registered"):
        reg.register("thing", m3.Thing)


def test_unknown_name_did_you_mean():
    reg = Registry("t_dym", listed=False)
    reg.register("glauber", object())
    with pytest.raises(ValueError, match=r"did you mean 'glauber'\?"):
        reg.load("glaubr")
    with pytest.raises(KeyError):
        reg["nope"]


def test_every_library_registry_is_one_registry_class():
    import sdot
    from hotnas.acquisition import ACQUISITIONS
    from hotnas.benchmarks import BENCHMARKS
    from hotnas.distances import METHODS
    from hotnas.kernels import KERNELS
    from hotnas.optimisers import OPTIMISERS
    from hotnas.spaces import SPACES

    regs = {"rate_law": sdot.RATE_LAWS, "schedule": sdot.SCHEDULES, "acquisition": ACQUISITIONS,
            "benchmark": BENCHMARKS, "distance": METHODS, "kernel": KERNELS, "optimiser": OPTIMISERS,
            "space": SPACES}
    for kind, reg in regs.items():
        assert isinstance(reg, Registry), kind
        assert REGISTRIES[kind] is reg
    # each front door gives a did-you-mean on a typo
    from hotnas.distances import distance
    from hotnas.kernels import get_kernel
    from hotnas.spaces import get_space

    for call, typo, right in ((sdot.get_rate_law, "metropolis_", "metropolis"), (get_kernel, "laplac", "laplace"),
                              (get_space, "nb20", "nb201")):
        with pytest.raises(ValueError, match=f"did you mean '{right}'"):
            call(typo)
    with pytest.raises(ValueError, match="did you mean 'hotnn'"):
        distance("a", "b", method="hotn")


def test_register_space_and_benchmark_follow_the_one_rule():
    """Before: register_space silently overwrote, register_benchmark raised on a re-import."""
    from hotnas.benchmarks import get_benchmark, register_benchmark
    from hotnas.spaces import SPACES, register_space
    from hotnas.spaces.nb201 import NB201Space

    class Other(NB201Space):
        pass

    with pytest.raises(ValueError, match="search space named 'nb201' is already registered"):
        register_space("nb201", Other)
    register_space("nb201", NB201Space)  # the class the lazy entry names: the same object, no-op
    assert SPACES.load("nb201") is NB201Space

    def factory():
        return get_benchmark("nb201")

    register_benchmark("t-nb201-alias", factory)
    register_benchmark("t-nb201-alias", factory)  # a plugin imported twice
    with pytest.raises(ValueError, match="already registered"):
        register_benchmark("t-nb201-alias", lambda: None)
    from hotnas.benchmarks import BENCHMARKS

    BENCHMARKS.unregister("t-nb201-alias")


def test_batched_engine_path_declared_at_registration():
    """A distance registered with batched='hotnn' gets the engine's batched path (it was an allow-list)."""
    from hotnas.distances import METHODS, batched_path, register_method
    from hotnas.distances.engine import PairwiseDistances
    from hotnas.distances.hotnn import _front as hotnn_front
    from hotnas.spaces import get_space

    def hotnn_mu0(a, b, space=None, **options):
        return hotnn_front(a, b, space=space, **{"mu": 0.0, **options})

    register_method("t-hotnn-mu0", hotnn_mu0, batched="hotnn", defaults={"mu": 0.0})
    register_method("t-hotnn-mu0-loop", hotnn_mu0)
    assert batched_path("t-hotnn-mu0") == "hotnn" and batched_path("t-hotnn-mu0-loop") is None
    assert batched_path("hotnn") == "hotnn" and batched_path("otmann") is None
    with pytest.raises(ValueError, match="batched must be"):
        register_method("t-bad", hotnn_mu0, batched="fast")
    space = get_space("nb201")
    rng = np.random.default_rng(3)
    archs = [space.sample(rng) for _ in range(6)]
    fast = PairwiseDistances(space, method="t-hotnn-mu0")
    loop = PairwiseDistances(space, method="t-hotnn-mu0-loop")
    D1, D2 = fast.matrix(archs), loop.matrix(archs)
    assert fast.stats["cell_pairs_solved"] > 0 and loop.stats["cell_pairs_solved"] == 0
    np.testing.assert_allclose(D1, D2, atol=1e-9)
    assert fast.options == {"mu": 0.0}
    for name in ("t-hotnn-mu0", "t-hotnn-mu0-loop"):
        METHODS.unregister(name)


def test_config_reads_live_registries_and_plugin_registries_show_up():
    from experiments.config import registries

    names = registries()
    for kind in ("optimiser", "benchmark", "rate_law", "schedule", "distance", "kernel", "acquisition", "space",
                 "executor", "solver"):
        assert names[kind], kind  # none of them is empty any more (acquisitions were: wrong module)
    assert {"kg", "ei", "lcb"} <= set(names["acquisition"])
    assert {"constant", "geometric"} <= set(names["schedule"])
    extra = Registry("t_plugin_kind")
    extra.register("one", object())
    try:
        assert registries()["t_plugin_kind"] == ["one"]
    finally:
        REGISTRIES.pop("t_plugin_kind")
