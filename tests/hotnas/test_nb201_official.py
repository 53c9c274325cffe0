"""Reader of the official NAS-Bench-201 / NATS-Bench result files (issue 15): small files written here
in the published on-disk structures (torch.save zip and legacy layouts, NATS fast-mode folder of
bz2 pickles), metrics checked against the API's definition (mean over seeds at the last epoch), and
crafted files refused without executing anything."""

from __future__ import annotations

import bz2
import pickle
from collections import OrderedDict

import pytest

from hotnas.benchmarks.nb201_official import NB201OfficialBenchmark, read_official
from hotnas.data import load_table

ARCHS = load_table("nb201")[0][:4]
EPOCHS = {"200": 200, "12": 12}


def result(dataset, seed, epochs, accs: dict[str, float]):
    """A ResultsCount state dict as the APIs store it (only the last epoch's accuracies matter here)."""
    last = epochs - 1
    return {"name": dataset, "net_state_dict": None, "train_acc1es": {last: 99.0}, "train_acc5es": None,
            "train_losses": {last: 0.1}, "train_times": None, "arch_config": {"name": "infer.tiny", "C": 16, "N": 5},
            "params": 0.5, "flop": 80.0, "seed": seed, "epochs": epochs, "latency": [0.01],
            "eval_names": sorted(accs), "eval_acc1es": OrderedDict((f"{k}@{last}", v) for k, v in accs.items()),
            "eval_times": {}, "eval_losses": {f"{k}@{last}": 1.0 for k in accs}}


def arch_results(i: int, hp: str):
    """An ArchResults state dict: cifar10-valid (seeds 777, 888), cifar10 (777), cifar100 (777, 999)."""
    e = EPOCHS[hp]
    base = 80.0 + i + (0.5 if hp == "200" else 0.0)
    all_results = {
        ("cifar10-valid", 777): result("cifar10-valid", 777, e, {"x-valid": base, "ori-test": base - 1}),
        ("cifar10-valid", 888): result("cifar10-valid", 888, e, {"x-valid": base + 1, "ori-test": base}),
        ("cifar10", 777): result("cifar10", 777, e, {"ori-test": base + 3}),
        ("cifar100", 777): result("cifar100", 777, e, {"x-valid": base - 20, "x-test": base - 21, "ori-test": 0.0}),
        ("cifar100", 999): result("cifar100", 999, e, {"x-valid": base - 18, "x-test": base - 19, "ori-test": 0.0}),
    }
    return {"arch_index": i, "arch_str": ARCHS[i], "all_results": all_results,
            "dataset_seed": {"cifar10-valid": [777, 888], "cifar10": [777], "cifar100": [777, 999]},
            "clear_net_done": True}


def nb201_dict(hp_names=("200", "12")):
    return {"meta_archs": list(ARCHS), "total_archs": len(ARCHS), "evaluated_indexes": set(range(len(ARCHS))),
            "arch2infos": {i: {name: arch_results(i, "200" if name in ("200", "full") else "12") for name in hp_names}
                           for i in range(len(ARCHS))}}


def expected(dataset: str, hp: str = "200"):
    out_v, out_t = {}, {}
    for i, a in enumerate(ARCHS):
        base = 80.0 + i + (0.5 if hp == "200" else 0.0)
        if dataset == "cifar10":
            out_v[a], out_t[a] = base + 0.5, base + 3        # mean(base, base + 1); cifar10 ori-test
        else:
            out_v[a], out_t[a] = base - 19, base - 20        # mean over seeds 777, 999
    return out_v, out_t


@pytest.mark.parametrize("layout", ["torch-zip", "torch-legacy", "nats-folder", "pbz2-file"])
def test_reads_official_layouts(tmp_path, layout):
    import torch

    if layout == "torch-zip":
        path = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
        torch.save(nb201_dict(), path)
    elif layout == "torch-legacy":                       # v1_0: "full" / "less", the pre-1.6 torch layout
        path = tmp_path / "NAS-Bench-201-v1_0-e61699.pth"
        torch.save(nb201_dict(("full", "less")), path, _use_new_zipfile_serialization=False)
    elif layout == "nats-folder":
        path = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
        path.mkdir()
        meta = {"meta_archs": list(ARCHS), "arch2infos": {}, "evaluated_indexes": set(range(len(ARCHS)))}
        with bz2.BZ2File(path / "meta.pickle.pbz2", "wb") as fh:
            pickle.dump(meta, fh, protocol=4)
        for i in range(len(ARCHS)):
            with bz2.BZ2File(path / f"{i:06d}.pickle.pbz2", "wb") as fh:
                pickle.dump({"12": arch_results(i, "12"), "200": arch_results(i, "200")}, fh, protocol=4)
    else:
        path = tmp_path / "NATS-tss-v1_0-3ffb9-simple.pickle.pbz2"
        with bz2.BZ2File(path, "wb") as fh:
            pickle.dump(nb201_dict(), fh, protocol=4)
    for dataset in ("cifar10", "cifar100"):
        for hp in ("200", "12"):
            val, test = read_official(path, dataset=dataset, hp=hp)
            ev, et = expected(dataset, hp)
            assert val == pytest.approx(ev) and test == pytest.approx(et)
    bench = NB201OfficialBenchmark(path)
    best = max(expected("cifar10")[0], key=expected("cifar10")[0].get)
    assert bench.optimum == pytest.approx(expected("cifar10")[0][best]) and bench.best_arch == best
    ev = bench.query(best)
    assert ev.test == pytest.approx(expected("cifar10")[1][best])


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_or_weighted_files_are_refused_without_running_anything(tmp_path):
    import torch

    marker = tmp_path / "pwned"
    bad = nb201_dict()
    bad["arch2infos"][0]["200"]["extra"] = _Evil(str(marker))
    def write_pbz2(p):
        with bz2.BZ2File(p, "wb") as fh:
            pickle.dump(bad, fh)
    for path, write in ((tmp_path / "evil.pth", lambda p: torch.save(bad, p)),
                        (tmp_path / "evil.pickle.pbz2", write_pbz2)):
        write(path)
        with pytest.raises(ValueError, match="refusing to load"):
            read_official(path)
        assert not marker.exists()
    weights = nb201_dict()
    weights["arch2infos"][0]["200"]["all_results"][("cifar10", 777)]["net_state_dict"] = {"w": torch.zeros(2)}
    torch.save(weights, tmp_path / "weights.pth")
    with pytest.raises(ValueError, match="tensors"):
        read_official(tmp_path / "weights.pth")
    with pytest.raises(ValueError, match="unknown dataset"):
        read_official(tmp_path / "weights.pth", dataset="mnist")
    (tmp_path / "plain.pth").write_bytes(pickle.dumps({"something": 1}))
    with pytest.raises(ValueError, match="no 'meta_archs'"):
        read_official(tmp_path / "plain.pth")
    torch.save(nb201_dict(("12",)), tmp_path / "short.pth")
    with pytest.raises(ValueError, match=r"no architecture has cifar10 results for hp='200' \(hps in the file: \['12'\]\)"):
        read_official(tmp_path / "short.pth")
