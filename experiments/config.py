"""TOML configs for studies and comparisons, validated against a schema with messages that name the fix.

A config names every component by its registry name (optimisers, benchmarks, rate laws, solvers,
distances, kernels, acquisitions, schedules, spaces, executors)::

    name = "main"
    plugins = []                      # imported first (they may register components): module names or
                                      # .py paths, both looked up relative to this file's folder too

    [benchmark]
    name = "digits"                   # any registered benchmark
    options = { epochs = 4 }          # keyword arguments of its factory

    [search]
    budget = 20                       # queries per trial
    batch_size = 1
    seeds = [0, 1, 2]
    checkpoint_every = 1              # batches between checkpoints

    [[methods]]
    optimiser = "flow"
    label = "flow"                    # optional, unique; the default is the optimiser name
    options = { law = "glauber" }     # keyword arguments of the optimiser

    [execution]                       # how to run; never changes the results
    executor = "process"              # serial | process | ray
    workers = 0                       # 0 = one per core

    [report]
    milestones = [5, 10, 20]

    [with_data]                       # merged in when a data path is given (--data PATH)
    file = "nb201_cifar10.csv"        # looked up in the directory when PATH is one
    name = "main-nb201"
    benchmark = { name = "nb201", options = { path = "{data}" } }

Errors are :class:`ConfigError` (a ``ValueError``) naming the file, the key path and what was
expected: an unknown key comes with a did-you-mean, a registry name with the registry's own
did-you-mean and list of names (the live :data:`sdot.registry.REGISTRIES`, nothing guessed), a
number with its allowed range (checked by :mod:`sdot.validation`). ``options`` tables are checked against
the signature of the component they configure (unknown keywords, types of defaulted parameters, and
any option whose key names a registry: ``law``, ``distance``, ``kernel``, ``acquisition``, ...).

The resolved config (defaults filled in) is what a run directory stores (:func:`dump_toml`); its
:meth:`Config.fingerprint` covers what determines the results (not ``[execution]``, ``[report]`` or the
name), so a run directory can tell whether it belongs to a config.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import inspect
import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from sdot.registry import did_you_mean  # re-exported: one did-you-mean for the project
from sdot.validation import nonnegative_int, positive_int

from .plugins import import_plugins  # re-exported: configs import their plugins first
from .toml_writer import dump_toml  # re-exported: a run directory stores its resolved config with it

__all__ = ["ConfigError", "Config", "MethodSpec", "BenchmarkSpec", "SearchSpec", "ExecutionSpec", "ReportSpec",
           "load_config", "config_from_dict", "dump_toml", "registries", "registry_entry", "import_plugins",
           "parse_seeds", "did_you_mean", "OPTION_REGISTRIES"]


class ConfigError(ValueError):
    """A config that cannot be run, with the place and the fix in the message."""


# ---------------------------------------------------------------------------------------------------
# registries


#: The packages whose import creates every registry of the library — each a :class:`sdot.registry.Registry`
#: listed in :data:`sdot.registry.REGISTRIES` by its kind, which is all that is read here (live: a plugin's
#: registrations show up once it is imported). ``sdot`` holds the rate laws, schedules and solvers;
#: ``hotnas.bo`` the kernels and acquisitions. An import error is a broken installation and propagates.
REGISTRY_MODULES = ("sdot", "hotnas.spaces", "hotnas.distances", "hotnas.bo", "hotnas.benchmarks", "hotnas.optimisers",
                    "experiments.executors")

#: Kinds shown first by ``sdot-nas list`` and checked in configs, in this order (then any other registry).
KINDS = ("optimiser", "benchmark", "rate_law", "solver", "schedule", "distance", "kernel", "acquisition", "space",
         "executor")

#: Option keys whose values are registry names (a string, or a list of strings), by registry kind.
OPTION_REGISTRIES: dict[str, str] = {
    "law": "rate_law", "rate_law": "rate_law", "solver": "solver", "schedule": "schedule",
    "distance": "distance", "kernel": "kernel", "acquisition": "acquisition", "space": "space",
    "optimiser": "optimiser", "benchmark": "benchmark", "executor": "executor",
}


def _registry_object(kind: str) -> Any:
    """The live registry of ``kind`` (None when there is none)."""
    from sdot.registry import REGISTRIES

    for module in REGISTRY_MODULES:
        importlib.import_module(module)
    return REGISTRIES.get(kind)


def registries() -> dict[str, list[str]]:
    """Every registry's valid names, read live from :data:`sdot.registry.REGISTRIES`."""
    from sdot.registry import REGISTRIES

    out = {}
    for kind in KINDS:
        obj = _registry_object(kind)
        out[kind] = sorted(obj) if obj is not None else []
    for kind, reg in REGISTRIES.items():  # registries defined elsewhere (e.g. by a plugin)
        out.setdefault(kind, sorted(reg))
    return out


def registry_entry(kind: str, name: str) -> Any:
    """The object registered under ``name`` (a lazy ``"module:attr"`` entry is imported), or None."""
    obj = _registry_object(kind)
    if obj is None or name not in obj:
        return None
    try:
        return obj.load(name)
    except ImportError:
        return None


def _check_name(kind: str, name: Any, where: str) -> None:
    """ConfigError unless ``name`` is registered in ``kind``; the message (with a did-you-mean) is the registry's."""
    reg = _registry_object(kind)
    if reg is not None and name in reg:
        return
    label = kind.replace("_", " ")
    if reg is None or not len(reg):
        raise ConfigError(f"{where}: unknown {label} {name!r}: no {label} is registered (is the module that "
                          f"defines them installed, or missing from 'plugins'?)")
    raise ConfigError(f"{where}: {reg.unknown_message(name)}")


# ---------------------------------------------------------------------------------------------------
# the resolved config


@dataclass
class BenchmarkSpec:
    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodSpec:
    label: str
    optimiser: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchSpec:
    budget: int
    seeds: list[int]
    batch_size: int = 1
    checkpoint_every: int = 1


@dataclass
class ExecutionSpec:
    executor: str = "serial"
    workers: int = 1
    device: str = "cpu"
    parallel: str = "trials"
    ray_address: str = ""


@dataclass
class ReportSpec:
    milestones: list[int] = field(default_factory=list)
    plots: bool = True


@dataclass
class Config:
    """A validated config with every default filled in."""

    name: str
    benchmark: BenchmarkSpec
    methods: list[MethodSpec]
    search: SearchSpec
    description: str = ""
    plugins: list[str] = field(default_factory=list)
    execution: ExecutionSpec = field(default_factory=ExecutionSpec)
    report: ReportSpec = field(default_factory=ReportSpec)
    source: str = ""          # the file it came from (not saved)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("source")
        return d

    def fingerprint(self) -> str:
        """SHA-256 of what determines the results: plugins, benchmark, methods, search."""
        return hashlib.sha256(_canonical_json(self.result_defining()).encode()).hexdigest()

    def result_defining(self) -> dict[str, Any]:
        d = self.to_dict()
        return {k: d[k] for k in ("plugins", "benchmark", "methods", "search")}

    def milestones(self) -> list[int]:
        """Query counts at which the report tabulates results (default: quarters of the budget)."""
        if self.report.milestones:
            return list(self.report.milestones)
        b = self.search.budget
        return sorted({max(1, round(b * q)) for q in (0.25, 0.5, 0.75, 1.0)})


def _canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


# ---------------------------------------------------------------------------------------------------
# schema

_REQUIRED = object()


@dataclass(frozen=True)
class _Field:
    types: tuple[type, ...]
    default: Any = _REQUIRED
    check: Callable[[Any], str | None] | None = None
    registry: str | None = None
    what: str = ""


def _passes(check: Callable[[str, Any], Any], v: Any) -> bool:
    """True when ``v`` is an integer (not a bool, not a float: TOML types are kept) that the
    :mod:`sdot.validation` ``check`` accepts."""
    if isinstance(v, bool) or not isinstance(v, int):
        return False
    try:
        check("value", v)
    except ValueError:
        return False
    return True


def _positive(v: Any) -> str | None:
    return None if _passes(positive_int, v) else f"must be >= 1, got {v}"


def _non_negative(v: Any) -> str | None:
    return None if _passes(nonnegative_int, v) else f"must be >= 0 (0 = one per core), got {v}"


_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _label_ok(v: str) -> str | None:
    return None if _LABEL.match(v) else (f"must start with a letter or digit and contain only letters, digits "
                                         f"and _ . + - (it names a directory), got {v!r}")


def _seeds_ok(v: list) -> str | None:
    if not v:
        return "must list at least one seed"
    bad = [s for s in v if not _passes(nonnegative_int, s)]
    if bad:
        return f"must be non-negative integers, got {bad}"
    dup = sorted({s for s in v if v.count(s) > 1})
    return f"lists seed(s) {dup} more than once" if dup else None


def _ints_ok(v: list) -> str | None:
    bad = [m for m in v if not _passes(positive_int, m)]
    return f"must be positive integers, got {bad}" if bad else None


def _device_ok(v: str) -> str | None:
    if not re.match(r"^(cpu|cuda(:\d+)?|mps|auto)$", v):
        return f"must be 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto', got {v!r}"
    if v.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return f"is {v!r} but torch sees no CUDA device here (torch.cuda.is_available() is False)"
    return None


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in choices else f"must be one of {list(choices)}, got {v!r}{did_you_mean(v, list(choices))}"
    return check


_TOP = {
    "name": _Field((str,), _REQUIRED, _label_ok),
    "description": _Field((str,), ""),
    "plugins": _Field((list,), []),
    "benchmark": _Field((dict,)),
    "methods": _Field((list,)),
    "search": _Field((dict,)),
    "execution": _Field((dict,), {}),
    "report": _Field((dict,), {}),
    "with_data": _Field((dict,), {}),
}
_BENCHMARK = {
    "name": _Field((str,), registry="benchmark"),
    "options": _Field((dict,), {}),
}
_METHOD = {
    "optimiser": _Field((str,), registry="optimiser"),
    "label": _Field((str,), None, _label_ok),
    "options": _Field((dict,), {}),
}
_SEARCH = {
    "budget": _Field((int,), _REQUIRED, _positive, what="queries per trial"),
    "seeds": _Field((list,), _REQUIRED, _seeds_ok),
    "batch_size": _Field((int,), 1, _positive),
    "checkpoint_every": _Field((int,), 1, _positive, what="batches between checkpoints"),
}
_EXECUTION = {
    "executor": _Field((str,), "serial", registry="executor"),
    "workers": _Field((int,), 1, _non_negative),
    "device": _Field((str,), "cpu", _device_ok),
    "parallel": _Field((str,), "trials", _one_of("trials", "evaluations")),
    "ray_address": _Field((str,), ""),
}
_REPORT = {
    "milestones": _Field((list,), [], _ints_ok),
    "plots": _Field((bool,), True),
}
_WITH_DATA_KEYS = ("file", "name", "description", "benchmark", "search", "method_options", "report")


def _type_name(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "an array", dict: "a table"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _toml_type(v: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array",
            dict: "a table"}.get(type(v), type(v).__name__)


def _isinstance(v: Any, types: tuple[type, ...]) -> bool:
    if isinstance(v, bool) and bool not in types:
        return False
    if float in types and isinstance(v, int) and not isinstance(v, bool):
        return True
    return isinstance(v, types)


def _validate_table(raw: Mapping[str, Any], schema: dict[str, _Field], where: str) -> dict[str, Any]:
    unknown = [k for k in raw if k not in schema]
    if unknown:
        k = unknown[0]
        raise ConfigError(f"{where}: unknown key {k!r}{did_you_mean(k, list(schema))}; valid keys: "
                          f"{', '.join(schema)}")
    out: dict[str, Any] = {}
    for key, f in schema.items():
        here = f"{where}.{key}" if where else key
        if key not in raw:
            if f.default is _REQUIRED:
                what = f" ({f.what})" if f.what else ""
                raise ConfigError(f"{here}: missing required key{what}")
            out[key] = copy.deepcopy(f.default)
            continue
        v = raw[key]
        if not _isinstance(v, f.types):
            raise ConfigError(f"{here}: expected {_type_name(f.types)}, got {_toml_type(v)} ({v!r})")
        if f.registry:
            _check_name(f.registry, v, here)
        if f.check:
            msg = f.check(v)
            if msg:
                raise ConfigError(f"{here}: {msg}")
        out[key] = v
    return out


# ---------------------------------------------------------------------------------------------------
# options tables, checked against the component's signature


def _signature_params(target: Any, skip: tuple[str, ...]) -> tuple[dict[str, inspect.Parameter], bool] | None:
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    params = {n: p for n, p in sig.parameters.items()
              if n not in skip and p.kind not in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY)}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    return {n: p for n, p in params.items() if p.kind is not p.VAR_KEYWORD}, var_kw


def _check_options(options: dict[str, Any], target: Any, what: str, where: str,
                   skip: tuple[str, ...]) -> None:
    for key, value in options.items():
        kind = OPTION_REGISTRIES.get(key)
        if kind is not None and registries()[kind]:
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, str):
                    _check_name(kind, v, f"{where}.{key}")
    if target is None:
        return
    sig = _signature_params(target, skip)
    if sig is None:
        return
    params, var_kw = sig
    for key, value in options.items():
        if key in skip:
            raise ConfigError(f"{where}: {key!r} is set by the run itself (from [search] / [execution]), "
                              f"not in options")
        if key not in params:
            if var_kw:
                continue
            raise ConfigError(f"{where}: unknown option {key!r} for {what}{did_you_mean(key, list(params))}; "
                              f"valid options: {', '.join(params) or '(none)'}")
        default = params[key].default
        if default is inspect.Parameter.empty or default is None:
            continue
        for t in (bool, int, float, str):
            if isinstance(default, t):
                if not _isinstance(value, (t,)):
                    raise ConfigError(f"{where}.{key}: expected {_type_name((t,))} like the default "
                                      f"{default!r} of {what}, got {_toml_type(value)} ({value!r})")
                break


# ---------------------------------------------------------------------------------------------------
# loading


def parse_seeds(text: str) -> list[int]:
    """``"3"`` -> [3]; ``"0,2,5"`` -> [0, 2, 5]; ``"0-4"`` -> [0, 1, 2, 3, 4]."""
    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if re.fullmatch(r"\d+-\d+", part):
                a, b = (int(p) for p in part.split("-"))
                if b < a:
                    raise ValueError
                seeds.extend(range(a, b + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise ConfigError(f"--seed: expected a seed, a list like 0,2,5 or a range like 0-9, got {text!r}") from None
    return seeds


def _resolve_data_path(data: str | Path, file: str | None) -> Path:
    p = Path(data).expanduser()
    if p.is_dir():
        if not file:
            raise ConfigError(f"--data {data}: a directory was given but [with_data] names no 'file' to look for")
        p = p / file
        if not p.is_file() and p.with_name(p.name + ".gz").is_file():  # a gzip copy, like the shipped ones
            p = p.with_name(p.name + ".gz")
    if not p.is_file():
        raise ConfigError(f"--data {data}: no such file {str(p)!r}")
    return p.resolve()


def _substitute(obj: Any, data: str) -> Any:
    if isinstance(obj, str):
        return obj.replace("{data}", data)
    if isinstance(obj, list):
        return [_substitute(v, data) for v in obj]
    if isinstance(obj, dict):
        return {k: _substitute(v, data) for k, v in obj.items()}
    return obj


def _apply_with_data(raw: dict[str, Any], data: str | Path, where: str) -> dict[str, Any]:
    wd = raw.get("with_data")
    if not wd:
        raise ConfigError(f"{where}: --data was given but the config has no [with_data] section saying what to "
                          f"run on a data file")
    if not isinstance(wd, dict):
        raise ConfigError(f"{where}.with_data: expected a table, got {_toml_type(wd)}")
    unknown = [k for k in wd if k not in _WITH_DATA_KEYS]
    if unknown:
        hint = did_you_mean(unknown[0], list(_WITH_DATA_KEYS))
        raise ConfigError(f"{where}.with_data: unknown key {unknown[0]!r}{hint}; valid keys: "
                          f"{', '.join(_WITH_DATA_KEYS)}")
    path = _resolve_data_path(data, wd.get("file"))
    wd = _substitute(wd, str(path))
    out = copy.deepcopy(raw)
    for key in ("name", "description"):
        if key in wd:
            out[key] = wd[key]
    if "benchmark" in wd:
        out["benchmark"] = wd["benchmark"]          # a different benchmark: replaced, not merged
    for key in ("search", "report"):
        if key in wd:
            out[key] = {**out.get(key, {}), **wd[key]}
    for label, opts in wd.get("method_options", {}).items():
        matches = [m for m in out.get("methods", []) if m.get("label", m.get("optimiser")) == label]
        if not matches:
            known = [m.get("label", m.get("optimiser")) for m in out.get("methods", [])]
            raise ConfigError(f"{where}.with_data.method_options: no method labelled {label!r}"
                              f"{did_you_mean(label, known)}; methods: {', '.join(map(str, known))}")
        matches[0]["options"] = {**matches[0].get("options", {}), **opts}
    return out


def config_from_dict(raw: Mapping[str, Any], source: str = "<config>", *, data: str | Path | None = None,
                     overrides: Mapping[str, Any] | None = None, check_options: bool = True) -> Config:
    """Validate a parsed TOML document; ``data`` applies ``[with_data]``; ``overrides`` maps dotted keys
    (``"search.seeds"``, ``"execution.workers"``) to values given on the command line."""
    where = Path(source).name if source else "<config>"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a table at the top level")
    raw = copy.deepcopy(dict(raw))
    if data is not None:
        raw = _apply_with_data(raw, data, where)
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.rpartition(".")
        table = raw.setdefault(section, {}) if section else raw
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: cannot override {dotted}: {section} is not a table")
        table[key] = value

    top = _validate_table(raw, _TOP, "")
    plugins = top["plugins"]
    if not all(isinstance(p, str) for p in plugins):
        raise ConfigError(f"{where}: plugins: expected an array of module names or .py paths (strings), "
                          f"got {plugins!r}")
    base = Path(source).parent if source and not source.startswith("<") else None
    plugins = import_plugins(plugins, f"{where}: plugins", base=base)  # paths resolved against the config's folder
    import hotnas.benchmarks  # noqa: F401 - populate the registries before names are checked
    import hotnas.optimisers  # noqa: F401

    def sub(key: str, schema: dict[str, _Field]) -> dict[str, Any]:
        return _validate_table(top[key], schema, f"{where}: {key}")

    bench = sub("benchmark", _BENCHMARK)
    search = sub("search", _SEARCH)
    execution = sub("execution", _EXECUTION)
    report = sub("report", _REPORT)
    if search["batch_size"] > search["budget"]:
        raise ConfigError(f"{where}: search.batch_size: must be <= search.budget ({search['budget']}), got "
                          f"{search['batch_size']}")
    too_late = [m for m in report["milestones"] if m > search["budget"]]
    if too_late:
        raise ConfigError(f"{where}: report.milestones: {too_late} exceed search.budget ({search['budget']})")

    if not top["methods"]:
        raise ConfigError(f"{where}: methods: list at least one [[methods]] table")
    methods: list[MethodSpec] = []
    for i, m in enumerate(top["methods"]):
        if not isinstance(m, dict):
            raise ConfigError(f"{where}: methods[{i}]: expected a table, got {_toml_type(m)}")
        m = _validate_table(m, _METHOD, f"{where}: methods[{i}]")
        label = m["label"] or m["optimiser"]
        if any(label == prev.label for prev in methods):
            raise ConfigError(f"{where}: methods[{i}]: label {label!r} is used twice; give each [[methods]] a "
                              f"distinct label")
        methods.append(MethodSpec(label=label, optimiser=m["optimiser"], options=m["options"]))

    if check_options:
        skip_b = ("seed", "device")
        _check_options(bench["options"], registry_entry("benchmark", bench["name"]),
                       f"benchmark {bench['name']!r}", f"{where}: benchmark.options", skip_b)
        for i, m in enumerate(methods):
            _check_options(m.options, registry_entry("optimiser", m.optimiser), f"optimiser {m.optimiser!r}",
                           f"{where}: methods[{i}].options", ("self", "space", "seed", "device", "budget"))

    return Config(name=top["name"], description=top["description"], plugins=plugins,
                  benchmark=BenchmarkSpec(**bench), methods=methods, search=SearchSpec(**search),
                  execution=ExecutionSpec(**execution), report=ReportSpec(**report), source=str(source))


def load_config(path: str | Path, *, data: str | Path | None = None,
                overrides: Mapping[str, Any] | None = None) -> Config:
    """Read and validate a TOML config file (see the module docstring for the schema)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, expected a TOML config file (to continue a run directory, "
                          f"use --resume)")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML: {exc}") from exc
    return config_from_dict(raw, str(path), data=data, overrides=overrides)
