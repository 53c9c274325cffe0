"""The tables shipped in the package, and the guarded exact-OT entry point."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

import hotnas
from hotnas.data import load_table, table_path
from hotnas.distances import emd as emd_mod


def test_shipped_tables_match_their_published_sanity_figures():
    archs, val = load_table("nb201")
    assert len(archs) == 15625 == len(set(archs)) and val.max() == pytest.approx(91.61, abs=5e-3)
    bench = hotnas.get_benchmark("nb201")  # no path: the shipped copy
    assert bench.test_of_best() == pytest.approx(94.37, abs=5e-3) or bench.tests.max() == pytest.approx(94.37, abs=5e-3)
    assert float(bench.tests.mean()) == pytest.approx(87.06, abs=5e-3)
    assert len(load_table("darts")[0]) == 725 and len(load_table("nb101")[0]) == 500


def test_a_users_own_copy_plain_or_gzip_is_read_the_same(tmp_path):
    plain = tmp_path / "nb201_cifar10.csv"
    with gzip.open(table_path("nb201"), "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    a, va = load_table("nb201", plain)
    b, vb = load_table("nb201", table_path("nb201"))
    assert a == b and np.array_equal(va, vb)
    assert hotnas.get_benchmark("nb201", path=plain).optimum == max(vb)


def test_unknown_table_and_missing_file_are_named():
    with pytest.raises(ValueError, match="'nb999'"):
        table_path("nb999")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_table("nb201", "nope.csv")


def test_public_pot_fallback_equals_the_fast_path():
    rng = np.random.default_rng(0)
    for n, m in [(2, 2), (3, 5), (7, 4)]:
        a, b = rng.random(n), rng.random(m)
        a, b = a / a.sum(), b / b.sum()
        M = rng.random((n, m))
        G1, c1, *_r1, code1 = emd_mod.emd(a, b, M)
        G2, c2, *_r2, code2 = emd_mod._public(a, b, M, 100000)
        assert code1 == code2 == 1
        assert c1 == pytest.approx(c2, abs=1e-12) and np.allclose(G1, G2, atol=1e-12)
        assert c1 == pytest.approx(float((G1 * M).sum()), abs=1e-12)
