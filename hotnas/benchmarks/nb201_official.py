"""The official NAS-Bench-201 / NATS-Bench topology result files as a tabular benchmark, read safely.

A user who has the published files plugs them in without conversion::

    bench = NB201OfficialBenchmark("NAS-Bench-201-v1_1-096897.pth", dataset="cifar100")
    bench = NB201OfficialBenchmark("NATS-tss-v1_0-3ffb9-simple")          # the fast-mode folder

**Formats read** (those of the NAS-Bench-201 and NATS-Bench APIs, ``nas_201_api`` / ``nats_bench``):

1. *NAS-Bench-201 single file* (``NAS-Bench-201-v1_0-e61699.pth``, ``-v1_1-096897.pth``): a
   ``torch.save`` of a dict ``{"meta_archs": [arch strings], "arch2infos": {index: {hp: ARCH}},
   "evaluated_indexes": ..., "total_archs": n}``. Both layouts of ``torch.save`` are read without
   torch: the zip layout (member ``<name>/data.pkl``) and the legacy one (consecutive pickles:
   magic number, protocol version, system info, the object, the storage keys).
2. *NATS-Bench topology, fast mode* (a folder such as ``NATS-tss-v1_0-3ffb9-simple/``):
   ``meta.pickle.pbz2`` (bz2-compressed pickle of the dict above; its ``arch2infos`` may be empty)
   and one ``{index:06d}.pickle.pbz2`` per architecture holding ``{hp: ARCH}``.
3. A single bz2-compressed (``.pbz2``) or plain pickle of the dict of 1.

``hp`` is the training schedule: ``"200"`` (200 epochs; ``"full"`` in v1_0) or ``"12"`` (``"less"``).
``ARCH`` is the state dict of the APIs' ``ArchResults``: ``{"arch_str", "all_results":
{(dataset, seed): RESULT}, "dataset_seed": {dataset: [seeds]}, ...}`` and ``RESULT`` that of
``ResultsCount``: ``{"epochs": E, "eval_acc1es": {"<set>@<epoch>": accuracy in %}, "params", "flop",
...}``. Metrics follow the APIs (``get_more_info(..., is_random=False)``): the mean over seeds at the
last epoch ``E - 1``. For ``dataset="cifar10"`` the validation value is ``x-valid`` of the
``cifar10-valid`` runs (trained on the training set) and the test value ``ori-test`` of the ``cifar10``
runs (trained on train + valid); for ``cifar100`` and ``ImageNet16-120`` they are ``x-valid`` and
``x-test`` of that dataset's runs. An architecture without the requested results is left out.

**Safety.** These files are pickles, and unpickling can run arbitrary code. They are read with a
restricted unpickler (:func:`load_data_pickle`) that builds only plain data — dicts, lists, tuples,
strings, numbers, None, ``set``/``frozenset``, ``collections.OrderedDict`` / ``defaultdict`` and numpy
scalars — and refuses every other global (an ``UnpicklingError`` naming it) and every tensor: result
files with network weights (the NATS "full" archives) are not supported; use the ``-simple`` ones.
"""

from __future__ import annotations

import bz2
import io
import os
import pickle
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from .tabular import TabularBenchmark

__all__ = ["NB201OfficialBenchmark", "read_official", "load_data_pickle", "OFFICIAL_DATASETS"]

#: dataset -> ((dataset of the validation runs, eval set), (dataset of the test runs, eval set))
OFFICIAL_DATASETS = {
    "cifar10": (("cifar10-valid", "x-valid"), ("cifar10", "ori-test")),
    "cifar10-valid": (("cifar10-valid", "x-valid"), ("cifar10-valid", "ori-test")),
    "cifar100": (("cifar100", "x-valid"), ("cifar100", "x-test")),
    "ImageNet16-120": (("ImageNet16-120", "x-valid"), ("ImageNet16-120", "x-test")),
}
_HP_ALIASES = {"200": "full", "full": "200", "12": "less", "less": "12"}
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_SAFE_GLOBALS = {
    ("collections", "OrderedDict"), ("collections", "defaultdict"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "list"), ("builtins", "dict"),
    ("builtins", "tuple"), ("builtins", "int"), ("builtins", "float"), ("builtins", "str"), ("builtins", "complex"),
    ("__builtin__", "set"), ("__builtin__", "frozenset"),
    ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class _DataUnpickler(pickle.Unpickler):
    """Unpickles plain data only (see the module docstring); anything else raises UnpicklingError."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        if module.split(".")[0] == "torch":
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: the file holds tensors (e.g. network "
                                         f"weights); only result files without weights are read (for NATS-Bench, "
                                         f"the '-simple' archives)")
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain data (dicts, lists, numbers, "
                                     f"strings) is read from benchmark files, never objects or code")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("the file holds tensors (e.g. network weights); only result files without "
                                     "weights are read (for NATS-Bench, the '-simple' archives)")


def load_data_pickle(fh: IO[bytes]) -> Any:
    """One pickle from ``fh``, restricted to plain data (:class:`_DataUnpickler`)."""
    return _DataUnpickler(fh).load()


def _load_file(path: Path) -> Any:
    """The object of a NAS-Bench-201 ``.pth`` (zip or legacy torch layout), a ``.pbz2`` or a plain pickle."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    where = str(path)
    try:
        if head.startswith(b"PK\x03\x04"):                 # torch.save, zip layout
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
                if not names:
                    raise ValueError(f"{where}: a zip archive without data.pkl is not a torch.save file")
                with zf.open(names[0]) as member:
                    return load_data_pickle(io.BytesIO(member.read()))
        if head.startswith(b"BZh"):
            with bz2.open(path, "rb") as fh:
                return load_data_pickle(fh)
        with open(path, "rb") as fh:
            first = load_data_pickle(fh)
            if first != _TORCH_LEGACY_MAGIC:                # a plain pickle of the dict
                return first
            protocol = load_data_pickle(fh)                 # torch.save, legacy layout
            if protocol != 1001:
                raise ValueError(f"{where}: unsupported legacy torch protocol {protocol!r}")
            load_data_pickle(fh)                            # system info (byte order, type sizes)
            return load_data_pickle(fh)
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{where}: cannot read it as a NAS-Bench-201 / NATS-Bench result file: {exc}") from None


def _arch_infos(path: Path) -> tuple[list[str], Iterator[tuple[int, Mapping]]]:
    """``(meta_archs, iterator of (index, {hp: ARCH}))`` for any supported format."""
    if path.is_dir():
        meta_path = path / "meta.pickle.pbz2"
        if not meta_path.is_file():
            raise ValueError(f"{path}: a NATS-Bench fast-mode folder holds meta.pickle.pbz2; it is not there")
        meta = _load_file(meta_path)
        archs = _meta_archs(meta, meta_path)
        inline = meta.get("arch2infos") or {}

        def per_arch() -> Iterator[tuple[int, Mapping]]:
            for i in range(len(archs)):
                if i in inline:
                    yield i, inline[i]
                    continue
                for name in (f"{i:06d}.pickle.pbz2", f"{i}.pickle.pbz2"):
                    if (path / name).is_file():
                        yield i, _load_file(path / name)
                        break
        return archs, per_arch()
    if not path.is_file():
        raise FileNotFoundError(f"NAS-Bench-201 / NATS-Bench result file not found: {path}")
    data = _load_file(path)
    archs = _meta_archs(data, path)
    infos = data.get("arch2infos")
    if not isinstance(infos, Mapping):
        raise ValueError(f"{path}: no 'arch2infos' table; not a NAS-Bench-201 / NATS-Bench result file")
    return archs, iter(sorted(infos.items(), key=lambda kv: kv[0]))


def _meta_archs(data: Any, where: Path) -> list[str]:
    if not isinstance(data, Mapping) or not isinstance(data.get("meta_archs"), list):
        raise ValueError(f"{where}: no 'meta_archs' list; not a NAS-Bench-201 / NATS-Bench result file "
                         f"(keys: {sorted(map(str, data))[:8] if isinstance(data, Mapping) else type(data).__name__})")
    return [str(a) for a in data["meta_archs"]]


def _mean_metric(arch: Mapping, dataset: str, eval_set: str) -> float | None:
    seeds = (arch.get("dataset_seed") or {}).get(dataset)
    results = arch.get("all_results") or {}
    if not seeds:
        seeds = sorted(s for d, s in results if d == dataset)
    accs = []
    for seed in seeds:
        r = results.get((dataset, seed))
        if r is None:
            continue
        key = f"{eval_set}@{int(r['epochs']) - 1}"
        acc = (r.get("eval_acc1es") or {}).get(key)
        if acc is not None:
            accs.append(float(acc))
    return sum(accs) / len(accs) if accs else None


def read_official(path: str | os.PathLike, dataset: str = "cifar10", hp: str = "200"
                  ) -> tuple[dict[str, float], dict[str, float]]:
    """``(validation, test)``: architecture string -> accuracy (%) from an official result file or folder.

    Raises:
        ValueError for an unknown ``dataset``, a file of another format or one holding objects or
        tensors (nothing in it is executed), or when no architecture has the requested results;
        FileNotFoundError.
    """
    if dataset not in OFFICIAL_DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(OFFICIAL_DATASETS)}")
    (vd, vs), (td, ts) = OFFICIAL_DATASETS[dataset]
    hp = str(hp)
    path = Path(path)
    archs, infos = _arch_infos(path)
    val: dict[str, float] = {}
    test: dict[str, float] = {}
    seen_hps: set[str] = set()
    for index, by_hp in infos:
        seen_hps.update(map(str, by_hp))
        arch = by_hp.get(hp, by_hp.get(_HP_ALIASES.get(hp, hp)))
        if arch is None:
            continue
        v, t = _mean_metric(arch, vd, vs), _mean_metric(arch, td, ts)
        if v is None or t is None:
            continue
        name = str(arch.get("arch_str") or archs[int(index)])
        val[name], test[name] = v, t
    if not val:
        raise ValueError(f"{path}: no architecture has {dataset} results for hp={hp!r} (hps in the file: "
                         f"{sorted(seen_hps)})")
    return val, test


class NB201OfficialBenchmark(TabularBenchmark):
    """NAS-Bench-201 from the official result files (see the module docstring for the formats).

    Args:
        path: the ``.pth`` / ``.pickle.pbz2`` file or the NATS-Bench fast-mode folder.
        dataset: ``"cifar10"`` (default), ``"cifar10-valid"``, ``"cifar100"`` or ``"ImageNet16-120"``.
        hp: ``"200"`` (default) or ``"12"`` epochs.
    """

    def __init__(self, path: str | os.PathLike, dataset: str = "cifar10", hp: str = "200", name: str | None = None):
        from ..spaces.nb201 import NB201Space

        val, test = read_official(path, dataset=dataset, hp=hp)
        super().__init__(val, test, space=NB201Space(), name=name or f"nb201-{dataset}-{hp}", source=str(path))
