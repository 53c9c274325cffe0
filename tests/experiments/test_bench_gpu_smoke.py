"""experiments/bench/bench_gpu.py --quick runs on the CPU in seconds, with every section and sane figures."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")


def test_bench_gpu_quick_on_cpu(tmp_path):
    from experiments.bench.bench_gpu import SECTIONS, main

    out = main(["--quick", "--device", "cpu", "--json", str(tmp_path / "gpu.json")])
    assert {s.name for s in SECTIONS} <= set(out)
    g = out["nb201_graph"]
    assert g["edges"] == 1200 and g["numpy_cpu"]["cell_pairs"] == g["torch_cpu"]["cell_pairs"] > 0
    # torch float64 on the CPU: the same values up to LP ties broken differently (rare)
    assert g["pairs_diff_above_1e-10"] <= 0.01 * g["edges"]
    for row in out["particles"].values():
        if isinstance(row, dict):
            assert row["numpy_cpu"]["step_wall_s"] > 0 and row["torch_cpu"]["step_wall_s"] > 0
    assert (tmp_path / "gpu.json").exists()


def test_bench_gpu_rejects_bad_arguments():
    from experiments.bench.bench_gpu import main, section

    with pytest.raises(ValueError, match="unknown bench_gpu section"):
        main(["--quick", "--device", "cpu", "--sections", "nope"])
    with pytest.raises(ValueError, match="defined twice"):
        section("particles")(lambda args, device: {})
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            main(["--quick", "--device", "cuda"])
