"""The engine pauses the garbage collector only for the duration of a query; the CG kernel module
(hotnas.distances.fgw_cg) is what hotnas.distances.ifgw re-exports, and its shortcuts change no bit."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from hotnas.distances import fgw_cg, ifgw
from hotnas.distances.engine import PairwiseDistances, _gc_paused


def test_gc_paused_restores_state_even_on_error():
    was = gc.isenabled()
    try:
        gc.enable()
        with _gc_paused():
            assert not gc.isenabled()
        assert gc.isenabled()
        with pytest.raises(RuntimeError):
            with _gc_paused():
                raise RuntimeError("boom")
        assert gc.isenabled()
        gc.disable()
        with _gc_paused():
            pass
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        (gc.enable if was else gc.disable)()


def test_engine_query_leaves_gc_on():
    eng = PairwiseDistances("nb201", method="hotnn")
    archs = [eng.space.sample(np.random.default_rng(i)) for i in range(4)]
    assert gc.isenabled()
    eng.prepare(archs)
    D = eng.matrix(archs)
    eng.pairs(archs[:2], archs[2:])
    assert gc.isenabled() and np.allclose(D, D.T)


def test_kernel_reexported_from_ifgw():
    for name in ("fgw_cg_batch", "fgw_values", "entropic_start", "round_plan", "_unique_lp", "_const_c"):
        assert getattr(ifgw, name) is getattr(fgw_cg, name)


def test_fgw_values_with_given_constc_is_bit_identical():
    rng = np.random.default_rng(0)
    B, n, m = 50, 5, 7
    M, C1, C2 = rng.random((B, n, m)), rng.random((B, n, n)), rng.random((B, m, m))
    p, q = np.full((B, n), 1 / n), np.full((B, m), 1 / m)
    G = p[:, :, None] * q[:, None, :]
    cc = fgw_cg._const_c(C1 * C1, C2 * C2, p, q)
    assert np.array_equal(fgw_cg.fgw_values(M, C1, C2, p, q, 0.5, G), fgw_cg.fgw_values(M, C1, C2, p, q, 0.5, G, cc))


def test_gradient_shortcut_is_exact():
    # POT forms 0.5 * (2 x + 2 y); the kernel forms x + y: equal bit for bit (powers of two scale exactly)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=100_000) * 10.0 ** rng.integers(-8, 8, 100_000), rng.normal(size=100_000)
    assert np.array_equal(0.5 * (2.0 * x + 2.0 * y), x + y)
