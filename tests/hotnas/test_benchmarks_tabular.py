"""Tabular benchmarks: NB201 facts, exact regret, query counting, and clear errors on bad tables."""

from __future__ import annotations

import numpy as np
import pytest

from hotnas.benchmarks import BENCHMARKS, get_benchmark
from hotnas.benchmarks.tabular import (NB201Benchmark, TableSpace, TabularBenchmark, UnknownArchitectureError,
                                       read_table)
from hotnas.optimisers import get_optimiser, run_search
from hotnas.spaces.nb201 import NB201Space

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
A = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
B = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
C = "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|"


@pytest.fixture(scope="module")
def nb201():
    return NB201Benchmark()


def write(tmp_path, text, name="t.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_nb201_table_facts(nb201):
    assert len(nb201) == 15625
    assert nb201.optimum == pytest.approx(91.6067)
    assert nb201.best_arch == BEST
    assert nb201.test_of_best() == pytest.approx(94.3733)
    assert nb201.tests.max() == pytest.approx(94.37, abs=0.005)
    assert nb201.tests.mean() == pytest.approx(87.06, abs=0.005)


def test_queries_are_counted_and_regret_is_exact():
    bench = get_benchmark("nb201")
    ev = bench.query(B)
    assert (ev.value, ev.test, ev.cost) == (pytest.approx(90.7693), pytest.approx(93.66), 1.0)
    assert bench.query(BEST).value == bench.optimum
    assert bench.n_queries == 2 and bench.total_cost == 2.0
    assert bench.regret(ev.value) == pytest.approx(91.6067 - 90.7693)
    bench.lookup(A)
    assert bench.n_queries == 2  # look-ups for analysis are not queries
    res = run_search(get_optimiser("random", bench.space, seed=0), bench, budget=30)
    np.testing.assert_allclose(res.regret(), bench.optimum - np.maximum.accumulate(res.values))
    i = int(np.argmax(res.values[:30]))
    assert res.test_of_best[-1] == res.tests[i]


def test_unknown_and_malformed_architectures(tmp_path):
    bench = TabularBenchmark.from_csv(write(tmp_path, f"arch,val,test\n{A},80,81\n{B},90,91\n"), "arch", "val",
                                      "test", space=NB201Space())
    with pytest.raises(UnknownArchitectureError, match="not in benchmark"):
        bench.query(C)  # a valid NB201 string, absent from this table
    with pytest.raises(ValueError, match="unknown operation"):
        bench.query(C.replace("skip_connect", "conv_7x7"))
    assert bench.n_queries == 0
    assert C not in bench and A in bench


def test_missing_metric(tmp_path):
    p = write(tmp_path, f"arch,val,test\n{A},80,81\n{B},,91\n")
    with pytest.raises(ValueError, match=r"row 1 .*missing value in column 'val'"):
        TabularBenchmark.from_csv(p, "arch", "val", "test", space=NB201Space())
    with pytest.raises(ValueError, match="no column 'valid'"):
        TabularBenchmark.from_csv(p, "arch", "valid")
    with pytest.raises(ValueError, match="test metrics do not match"):
        TabularBenchmark({A: 1.0, B: 2.0}, {A: 1.0})


def test_non_numeric_values(tmp_path):
    p = write(tmp_path, f"arch,val,test\n{A},80,81\n{B},high,91\n")
    with pytest.raises(ValueError, match=r"'high', which is not a number"):
        TabularBenchmark.from_csv(p, "arch", "val", "test")
    p = write(tmp_path, f"arch,val\n{A},80\n{B},inf\n", "inf.csv")
    with pytest.raises(ValueError, match="finite"):
        TabularBenchmark.from_csv(p, "arch", "val")


def test_duplicates(tmp_path):
    p = write(tmp_path, f"arch,val\n{A},80\n{B},90\n{A},81\n")
    with pytest.raises(ValueError, match="duplicate architecture .* rows 0 and 2"):
        TabularBenchmark.from_csv(p, "arch", "val")
    p = write(tmp_path, f"arch,val\n{A},80\n {A} ,81\n", "canon.csv")  # the same architecture once canonicalised
    with pytest.raises(ValueError, match="duplicate architecture"):
        TabularBenchmark.from_csv(p, "arch", "val", space=NB201Space())


def test_invalid_architecture_in_table(tmp_path):
    p = write(tmp_path, f"arch,val\n{A},80\n|conv~0|+|x~0|,90\n")
    with pytest.raises(ValueError, match=r"row 1: architecture .* not valid for search space 'nb201'"):
        TabularBenchmark.from_csv(p, "arch", "val", space=NB201Space())
    with pytest.raises(FileNotFoundError):
        read_table(tmp_path / "absent.csv", "arch", "val")


def test_generic_table_with_a_parser(tmp_path):
    rows = "\n".join(f"net-{i},{v}" for i, v in enumerate([3.0, 9.0, 1.0, 7.0]))
    bench = TabularBenchmark.from_csv(write(tmp_path, "name,score\n" + rows + "\n"), "name", "score",
                                      parser=lambda s: s.strip().lower())
    assert isinstance(bench.space, TableSpace) and len(bench.space) == 4
    assert bench.query("NET-1 ").value == 9.0 and bench.optimum == 9.0 and bench.test_of_best() is None
    res = run_search(get_optimiser("random", bench.space, seed=1), bench, budget=4)
    assert sorted(res.archs) == [f"net-{i}" for i in range(4)] and res.regret()[-1] == 0.0
    with pytest.raises(NotImplementedError, match="mutation"):
        bench.space.mutations("net-0")


def test_registry_names():
    assert {"nb201", "digits"} <= set(BENCHMARKS)
    with pytest.raises(ValueError, match="unknown benchmark"):
        get_benchmark("nb999")
