"""The trainable-task studies run in their --smoke mode (table, JSON, PNG; benchmark note)."""

from experiments.bench import bench_trainable
from experiments.studies import transfer_jumps


def test_transfer_jumps_smoke(tmp_path, capsys):
    out = transfer_jumps.main(["--smoke", "--out", str(tmp_path)])
    assert {"table.md", "results.json", "val_loss.png"} <= {p.name for p in tmp_path.iterdir()}
    assert len(out["summary"]) == 2
    for entry in out["summary"].values():
        assert set(transfer_jumps.MODES) <= set(entry) and entry["n"] == 2
    assert "transfer lower loss in" in capsys.readouterr().out


def test_bench_trainable_smoke(capsys):
    out = bench_trainable.main(["--smoke"])
    assert out["query"]["cpu_mean"] > 0 and out["supernet"][4]["step_cpu"] > 0
    assert "jump evaluation" in capsys.readouterr().out
