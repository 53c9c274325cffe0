"""Configs: bad inputs give one clear error naming the key and the fix; the resolved config round-trips."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import toy_components  # noqa: F401 - registers the toy space/benchmark/optimisers
from experiments.config import ConfigError, config_from_dict, dump_toml, load_config, parse_seeds, registries
from experiments.runner import preflight

ROOT = Path(__file__).resolve().parents[2]


def base() -> dict:
    return {
        "name": "toy",
        "plugins": ["toy_components"],
        "benchmark": {"name": "toy-bits", "options": {"n_bits": 6}},
        "search": {"budget": 8, "seeds": [0, 1]},
        "methods": [{"optimiser": "toy-evolve", "options": {"population": 3}}, {"optimiser": "toy-random"}],
    }


def error(raw: dict, **kw) -> str:
    with pytest.raises(ConfigError) as exc:
        config_from_dict(raw, "bad.toml", **kw)
    return str(exc.value)


def test_valid_config_resolves_defaults_and_round_trips(tmp_path):
    cfg = config_from_dict(base(), "toy.toml")
    assert cfg.search.batch_size == 1 and cfg.search.checkpoint_every == 1
    assert [m.label for m in cfg.methods] == ["toy-evolve", "toy-random"]
    assert cfg.execution.executor == "serial"
    (tmp_path / "resolved.toml").write_text(dump_toml(cfg.to_dict()))
    again = load_config(tmp_path / "resolved.toml")
    assert again.to_dict() == cfg.to_dict()
    assert again.fingerprint() == cfg.fingerprint()
    # execution settings never change results, so they are not part of the fingerprint
    raw = base()
    raw["execution"] = {"executor": "process", "workers": 2}
    assert config_from_dict(raw).fingerprint() == cfg.fingerprint()


def test_unknown_keys_suggest_the_right_one():
    raw = base()
    raw["serach"] = {}
    msg = error(raw)
    assert "unknown key 'serach'" in msg and "did you mean 'search'?" in msg
    raw = base()
    raw["search"]["budegt"] = 3
    msg = error(raw)
    assert "search" in msg and "'budegt'" in msg and "did you mean 'budget'?" in msg
    raw = base()
    raw["methods"][0]["option"] = {}
    assert "did you mean 'options'?" in error(raw)


def test_unknown_option_of_a_component_is_checked_against_its_signature():
    raw = base()
    raw["methods"][0]["options"] = {"populaton": 3}
    msg = error(raw)
    assert "methods[0].options" in msg and "'populaton'" in msg and "did you mean 'population'?" in msg
    raw = base()
    raw["benchmark"]["options"] = {"n_bit": 6}
    assert "did you mean 'n_bits'?" in error(raw)


def test_wrong_types_name_the_expected_type():
    raw = base()
    raw["search"]["budget"] = "ten"
    msg = error(raw)
    assert "search.budget" in msg and "expected an integer" in msg and "'ten'" in msg
    raw = base()
    raw["search"]["budget"] = True
    assert "expected an integer" in error(raw)
    raw = base()
    raw["methods"][0]["options"] = {"population": "four"}
    msg = error(raw)
    assert "population" in msg and "expected an integer" in msg
    raw = base()
    raw["methods"] = {"optimiser": "toy-random"}
    assert "methods: expected an array" in error(raw)


def test_unknown_registry_names_list_the_valid_ones():
    raw = base()
    raw["methods"][1]["optimiser"] = "toy-randm"
    msg = error(raw)
    assert "unknown optimiser 'toy-randm'" in msg and "did you mean 'toy-random'?" in msg
    for name in registries()["optimiser"]:
        assert name in msg
    raw = base()
    raw["benchmark"]["name"] = "nope"
    msg = error(raw)
    assert "unknown benchmark 'nope'" in msg and "toy-bits" in msg
    raw = base()
    raw["execution"] = {"executor": "rey"}
    assert "did you mean 'ray'?" in error(raw)


def test_registry_names_inside_options_are_checked():
    # 'law' names a rate law of sdot.rates whatever component receives it
    raw = base()
    raw["methods"][1]["options"] = {"law": "glaubr"}
    msg = error(raw, check_options=True)
    assert "unknown rate law 'glaubr'" in msg and "did you mean 'glauber'?" in msg and "metropolis" in msg


def test_impossible_values():
    cases = [
        (("search", "budget", 0), "must be >= 1"),
        (("search", "seeds", [-1]), "non-negative"),
        (("search", "seeds", [0, 0]), "more than once"),
        (("search", "seeds", []), "at least one seed"),
        (("search", "batch_size", 9), "must be <= search.budget"),
        (("search", "checkpoint_every", 0), "must be >= 1"),
    ]
    for (section, key, value), expected in cases:
        raw = base()
        raw[section][key] = value
        assert expected in error(raw), (key, value)
    raw = base()
    raw["execution"] = {"workers": -1}
    assert "must be >= 0" in error(raw)
    raw = base()
    raw["report"] = {"milestones": [4, 20]}
    assert "exceed search.budget" in error(raw)
    raw = base()
    raw["methods"].append({"optimiser": "toy-random"})
    assert "used twice" in error(raw)
    raw = base()
    raw["name"] = "a/b"
    assert "names a directory" in error(raw)
    raw = base()
    raw["execution"] = {"device": "gpu"}
    assert "'cpu', 'cuda'" in error(raw)


def test_impossible_option_values_fail_before_any_work():
    raw = base()
    raw["methods"][0]["options"] = {"population": 0}
    cfg = config_from_dict(raw, "bad.toml")
    with pytest.raises(ConfigError, match=r"methods\[0\].*population must be >= 1"):
        preflight(cfg)


def test_missing_required_and_bad_files(tmp_path):
    raw = base()
    del raw["search"]["budget"]
    assert "search.budget: missing required key" in error(raw)
    p = tmp_path / "broken.toml"
    p.write_text("name = 'x'\n[search\n")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        load_config(p)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    raw = base()
    raw["plugins"] = ["no_such_plugin_module"]
    assert "cannot import plugin module 'no_such_plugin_module'" in error(raw)


def test_with_data_switches_the_benchmark(tmp_path):
    table = tmp_path / "table.csv"
    table.write_text("x\n")
    raw = base()
    raw["with_data"] = {"file": "table.csv", "name": "toy-data",
                        "benchmark": {"name": "toy-bits", "options": {"n_bits": 5, "ledger": "{data}"}},
                        "search": {"budget": 5}, "method_options": {"toy-evolve": {"population": 2}}}
    cfg = config_from_dict(raw, "toy.toml", data=tmp_path)
    assert cfg.name == "toy-data" and cfg.search.budget == 5 and cfg.search.seeds == [0, 1]
    assert cfg.benchmark.options == {"n_bits": 5, "ledger": str(table.resolve())}
    assert cfg.methods[0].options == {"population": 2}
    assert config_from_dict(raw, "toy.toml", data=table).benchmark.options["ledger"] == str(table.resolve())
    with pytest.raises(ConfigError, match="no such file"):
        config_from_dict(raw, "toy.toml", data=tmp_path / "nothing")
    with pytest.raises(ConfigError, match=r"no \[with_data\] section"):
        config_from_dict(base(), "toy.toml", data=tmp_path)


def test_parse_seeds():
    assert parse_seeds("3") == [3]
    assert parse_seeds("0,2,5") == [0, 2, 5]
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="--seed"):
        parse_seeds("a")


def test_shipped_configs_validate_against_the_live_registries(tmp_path):
    configs = sorted((ROOT / "experiments" / "configs").glob("*.toml"))
    assert {"main.toml", "nb201.toml", "digits.toml"} <= {p.name for p in configs}
    table = tmp_path / "nb201_cifar10.csv"
    table.write_text("index,arch_str,val_acc,test_acc\n")
    for p in configs:
        cfg = load_config(p)
        assert cfg.name == tomllib.loads(p.read_text())["name"]
        if "with_data" in tomllib.loads(p.read_text()):
            with_data = load_config(p, data=tmp_path)
            assert with_data.benchmark.options["path"] == str(table.resolve()), p.name
    main = load_config(ROOT / "experiments" / "configs" / "main.toml")
    assert main.benchmark.name == "digits-nb201"  # the R^d x G flow on the digits ground-truth table
    assert {m.optimiser for m in main.methods} == {"supernet-flow", "hotnas", "evolution", "random"}


def test_plugin_relative_to_config_registers_names_the_checks_then_accept(tmp_path):
    """A plugin file next to the config (named relative to it) registers a distance; options naming it
    validate, a typo gets a did-you-mean from the live registry."""
    (tmp_path / "ext_t18.py").write_text(
        "from hotnas.distances import register_method\n"
        "def edits(a, b, space=None, **options):\n"
        "    return float(sum(x != y for x, y in zip(a, b)))\n"
        "register_method('t18-edits', edits)\n")
    cfg = tmp_path / "c.toml"
    body = ('name = "t"\nplugins = ["ext_t18.py"]\n[benchmark]\nname = "nb201"\n[search]\nbudget = 30\n'
            'seeds = [0]\n[[methods]]\noptimiser = "hotnas"\noptions = {{ distance = "{d}", n_init = 5 }}\n')
    cfg.write_text(body.format(d="t18-edits"))
    config = load_config(cfg)
    assert config.plugins == [str((tmp_path / "ext_t18.py").resolve())]
    cfg.write_text(body.format(d="t18-edit"))
    with pytest.raises(ConfigError, match="did you mean 't18-edits'"):
        load_config(cfg)
    from hotnas.distances import METHODS

    METHODS.unregister("t18-edits")


def test_every_kind_is_a_live_registry_found_where_it_is_created():
    """No guessed locations: each module named is imported, each kind is a real sdot.registry.Registry."""
    import importlib

    from experiments.config import KINDS, REGISTRY_MODULES, _registry_object
    from sdot.registry import REGISTRIES, Registry

    for module in REGISTRY_MODULES:
        importlib.import_module(module)
    for kind in KINDS:
        reg = _registry_object(kind)
        assert isinstance(reg, Registry) and len(reg) and REGISTRIES[kind] is reg, kind


def test_unknown_names_get_the_registrys_did_you_mean_and_numbers_keep_their_toml_type():
    raw = base()
    raw["execution"] = {"executor": "proces"}
    msg = error(raw)
    assert "unknown executor 'proces' (did you mean 'process'?)" in msg and "register_executor" in msg
    for bad in ([1.0], [True], [-2]):
        raw = base()
        raw["search"]["seeds"] = bad
        assert "non-negative" in error(raw) or "expected" in error(raw), bad
    raw = base()
    raw["search"]["budget"] = 2.0
    assert "expected an integer" in error(raw)
