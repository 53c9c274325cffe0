"""Torch backend of the batched FGW solver: device validation, float64 agreement with numpy on the
CPU, POT as the independent reference, and the entropic start (issue 17)."""

from __future__ import annotations

import numpy as np
import ot
import pytest

torch = pytest.importorskip("torch")

from hotnas.cells import Cell  # noqa: E402
from hotnas.distances import distance  # noqa: E402
from hotnas.distances.engine import PairwiseDistances  # noqa: E402
from hotnas.distances.features import feature_cost_matrix  # noqa: E402
from hotnas.distances.fgw_torch import (  # noqa: E402
    check_device,
    entropic_start_torch,
    fgw_cg_batch_torch,
)
from hotnas.distances.ifgw import (  # noqa: E402
    IFGWOptions,
    entropic_start,
    features_cached,
    fgw_cg_batch,
    ifgw_pairs,
    round_plan,
)
from hotnas.spaces.nb201 import NB201Space  # noqa: E402

NB201 = NB201Space()
CHAIN = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest: torch on one thread


def _feature_pairs(n: int, seed: int):
    rng = np.random.default_rng(seed)
    fo = IFGWOptions().features
    fa, fb = [], []
    while len(fa) < n:
        a = NB201.sample(rng)
        b = NB201.mutate(a, rng) if rng.random() < 0.7 else NB201.sample(rng)
        ca, cb = NB201.to_cell(a), NB201.to_cell(b)
        if ca.canonical_hash != cb.canonical_hash:
            fa.append(features_cached(ca, fo))
            fb.append(features_cached(cb, fo))
    return fa, fb


def _stack(fa, fb, lam=0.5):
    M = np.stack([feature_cost_matrix(f, g, lam) for f, g in zip(fa, fb)])
    return (M, np.stack([f.flow for f in fa]), np.stack([g.flow for g in fb]),
            np.stack([f.masses for f in fa]), np.stack([g.masses for g in fb]))


# -- validation at the edge ----------------------------------------------------------------------
def test_backend_and_device_validation():
    with pytest.raises(ValueError, match="backend must be 'numpy' or 'torch'"):
        IFGWOptions(backend="jax")
    with pytest.raises(ValueError, match="needs backend='torch'"):
        IFGWOptions(device="cuda")
    with pytest.raises(ValueError, match="not a torch device string"):
        IFGWOptions(backend="torch", device="gpu0")
    with pytest.raises(ValueError, match="only 'cpu' and 'cuda'"):
        IFGWOptions(backend="torch", device="meta")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            IFGWOptions(backend="torch", device="cuda")
        with pytest.raises(ValueError, match="CUDA is not available"):
            PairwiseDistances("nb201", backend="torch", device="cuda:0")
    check_device("torch", "cpu")  # valid: no error
    with pytest.raises(ValueError, match="entropic_epsilon"):
        IFGWOptions(entropic_epsilon=0.0)
    with pytest.raises(ValueError, match="sinkhorn_iters"):
        IFGWOptions(sinkhorn_iters=0)


# -- closed form ------------------------------------------------------------------------------------
def test_torch_closed_form_chain():
    # equal operation weights: identical flows, identity plan optimal, d = (1 - alpha) lambda_op 0.2 / 3
    c3 = Cell(CHAIN, ("input", "nor_conv_3x3", "output"))
    c1 = Cell(CHAIN, ("input", "nor_conv_1x1", "output"))
    w = {"nor_conv_1x1": 1.0, "nor_conv_3x3": 1.0}
    d = distance(c3, c1, method="ifgw", backend="torch", device="cpu", op_weights=w)
    assert d == pytest.approx(0.5 * 0.5 * 0.2 / 3, abs=1e-15)


# -- agreement with numpy in float64 on the CPU ---------------------------------------------------
def test_cg_kernel_matches_numpy_where_every_lp_has_a_unique_optimum():
    fa, fb = _feature_pairs(240, seed=11)
    groups: dict = {}
    for f, g in zip(fa, fb):
        groups.setdefault((f.n, g.n), []).append((f, g))
    checked = 0
    for pairs in groups.values():
        M, C1, C2, p, q = _stack([f for f, _ in pairs], [g for _, g in pairs])
        G0 = p[:, :, None] * q[:, None, :]
        v_np, G_np, deg = fgw_cg_batch(M, C1, C2, p, q, 0.5, G0, track=True)
        v_t, G_t, deg_t = fgw_cg_batch_torch(M, C1, C2, p, q, 0.5, G0, track=True, device="cpu")
        ok = ~deg  # no LP tie on the numpy path: the path is determined by the problem
        assert np.abs(v_np[ok] - v_t[ok]).max(initial=0.0) < 1e-12
        assert np.abs(G_np[ok] - G_t[ok]).max(initial=0.0) < 1e-12
        checked += int(ok.sum())
        # independent reference: POT's own CG from the same start
        for k in np.flatnonzero(ok)[:3]:
            ref = ot.gromov.fused_gromov_wasserstein2(M[k], C1[k], C2[k], p[k], q[k], loss_fun="square_loss",
                                                      symmetric=False, alpha=0.5)
            assert v_t[k] == pytest.approx(float(ref), abs=1e-12)
    assert checked >= 150  # most pairs meet no LP tie (178 of 240 here)


def test_ifgw_pairs_torch_matches_numpy_and_never_above_pot():
    fa, fb = _feature_pairs(200, seed=12)
    v_np = ifgw_pairs(fa, fb, IFGWOptions())
    v_t = ifgw_pairs(fa, fb, IFGWOptions(backend="torch", device="cpu"))
    diff = np.abs(v_np - v_t)
    # exact LP ties can be broken differently by ~1e-16 differences in the products (measured:
    # 1 pair in 3,000, where torch found the lower value); everything else agrees to round-off
    assert np.mean(diff <= 1e-10) >= 0.99
    for f, g, v in zip(fa[:40], fb[:40], v_t[:40]):
        M = feature_cost_matrix(f, g, 0.5)
        ref = ot.gromov.fused_gromov_wasserstein2(M, f.flow, g.flow, f.masses, g.masses, loss_fun="square_loss",
                                                  symmetric=False, alpha=0.5)
        assert v <= float(ref) + 1e-9


def test_engine_torch_matrix_matches_numpy():
    rng = np.random.default_rng(13)
    archs = [NB201.sample(rng) for _ in range(10)]
    D_np = PairwiseDistances(NB201).matrix(archs)
    D_t = PairwiseDistances(NB201, backend="torch", device="cpu").matrix(archs)
    assert np.array_equal(D_t, D_t.T) and np.all(np.diag(D_t) == 0)
    assert np.mean(np.abs(D_np - D_t) <= 1e-10) >= 0.97


# -- the entropic start ----------------------------------------------------------------------------
def test_entropic_start_feasible_and_backends_agree():
    fa, fb = _feature_pairs(60, seed=14)
    pairs = [(f, g) for f, g in zip(fa, fb) if (f.n, g.n) == (fa[0].n, fb[0].n)]
    M, C1, C2, p, q = _stack([f for f, _ in pairs], [g for _, g in pairs])
    T_np = entropic_start(M, C1, C2, p, q, 0.5, 0.01, 10, 30)
    T_t = entropic_start_torch(M, C1, C2, p, q, 0.5, 0.01, 10, 30, device="cpu")
    assert np.abs(T_np - T_t).max() < 1e-10
    assert T_np.min() >= 0.0
    assert np.abs(T_np.sum(2) - p).max() < 1e-14 and np.abs(T_np.sum(1) - q).max() < 1e-14


def test_round_plan_exact_marginals_and_keeps_feasible_plans():
    rng = np.random.default_rng(15)
    p = np.full((4, 3), 1 / 3)
    q = np.full((4, 5), 1 / 5)
    T = rng.random((4, 3, 5))
    R = round_plan(T, p, q)
    assert np.abs(R.sum(2) - p).max() < 1e-15 and np.abs(R.sum(1) - q).max() < 1e-15 and R.min() >= 0
    F = p[:, :, None] * q[:, None, :]
    assert np.abs(round_plan(F, p, q) - F).max() < 1e-16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_backend_close_to_numpy():  # pragma: no cover - runs only where a GPU is present
    fa, fb = _feature_pairs(200, seed=16)
    v_np = ifgw_pairs(fa, fb, IFGWOptions())
    v_c = ifgw_pairs(fa, fb, IFGWOptions(backend="torch", device="cuda"))
    assert np.mean(np.abs(v_np - v_c) <= 1e-10) >= 0.98
