"""The batched exact OT (``emd_rows``): compiled and per-problem paths give POT's ``emd_c`` bit for bit."""

import numpy as np
import pytest

from ot.lp.emd_wrap import emd_c

from hotnas.distances import emd as emd_module
from hotnas.distances.emd import emd_rows, use_compiled, using_compiled


@pytest.fixture(params=[True, False], ids=["compiled", "loop"])
def path(request):
    if request.param:
        pytest.importorskip("numba")  # the test extra installs it: this runs in CI
    use_compiled(request.param)
    assert using_compiled()[0] is request.param, using_compiled()
    yield request.param
    use_compiled(True)


def _batch(rng, B, n, m, ties: bool, zero_mass: bool = False):
    P = rng.random((B, n)) + 0.1
    Q = rng.random((B, m)) + 0.1
    if zero_mass:  # some empty rows / columns: emd_c's potentials are 0 there
        P[:, 0] = 0.0
        Q[:, -1] = 0.0
    P /= P.sum(1, keepdims=True)
    Q *= (P.sum(1) / Q.sum(1))[:, None]
    # integer costs: many LPs with several optimal vertices, where tie-breaking decides the plan
    M = rng.integers(0, 3, size=(B, n, m)).astype(float) if ties else rng.random((B, n, m))
    return P, Q, M


@pytest.mark.parametrize("shape", [(2, 2), (5, 8), (8, 8), (7, 3)])
@pytest.mark.parametrize("ties", [False, True])
def test_rows_equal_emd_c_bit_for_bit(path, shape, ties):
    rng = np.random.default_rng(hash((shape, ties)) % 2**32)
    P, Q, M = _batch(rng, 40, *shape, ties, zero_mass=shape == (5, 8))
    rows = np.array([3, 0, 17, 39, 5, 22])
    G = np.full(M.shape, 7.0)  # rows not asked for keep their contents
    U, V = np.full(P.shape, 7.0), np.full(Q.shape, 7.0)
    emd_rows(P, Q, M, rows, G, U, V)
    for k in range(40):
        if k not in rows:
            assert (G[k] == 7.0).all() and (U[k] == 7.0).all() and (V[k] == 7.0).all()
            continue
        Gk, _c, uk, vk, code = emd_c(P[k], Q[k], M[k], 100000, 1)
        assert code == 1
        np.testing.assert_array_equal(G[k], Gk)
        np.testing.assert_array_equal(U[k], uk)
        np.testing.assert_array_equal(V[k], vk)


def test_closed_forms(path):
    # two points with cost 1 off the diagonal: the identity plan, cost 0
    a = np.array([[0.5, 0.5]])
    G = np.zeros((1, 2, 2))
    emd_rows(a, a.copy(), np.array([[[0.0, 1.0], [1.0, 0.0]]]), np.array([0]), G)
    np.testing.assert_array_equal(G[0], np.diag([0.5, 0.5]))
    # 1-D points with a convex cost: the optimal plan is the monotone (north-west corner) one
    x, y = np.sort(np.random.default_rng(1).random(6)), np.sort(np.random.default_rng(2).random(4))
    p, q = np.full((1, 6), 1 / 6), np.full((1, 4), 1 / 4)
    G = np.zeros((1, 6, 4))
    emd_rows(p, q, ((x[:, None] - y[None, :]) ** 2)[None], np.array([0]), G)
    nw = np.zeros((6, 4))  # north-west corner rule on the masses
    i = j = 0
    a, b = p[0].copy(), q[0].copy()
    while i < 6 and j < 4:
        t = min(a[i], b[j])
        nw[i, j] = t
        a[i] -= t
        b[j] -= t
        if a[i] <= 1e-15:
            i += 1
        else:
            j += 1
    np.testing.assert_allclose(G[0], nw, atol=1e-15)


def test_failure_is_an_error_naming_the_shape(path):
    P, Q, M = _batch(np.random.default_rng(3), 2, 8, 8, ties=False)
    with pytest.raises(RuntimeError, match=r"code 3\).*\(8, 8\)"):
        emd_rows(P, Q, M, np.array([0, 1]), np.zeros(M.shape), max_iter=1)


def test_compiled_refuses_a_non_contiguous_output():
    pytest.importorskip("numba")
    use_compiled(True)
    assert using_compiled()[0]
    P, Q, M = _batch(np.random.default_rng(4), 3, 4, 4, ties=False)
    G = np.zeros((3, 4, 4)).swapaxes(1, 2)
    with pytest.raises(ValueError, match="G: it must be a C-contiguous"):
        emd_rows(P, Q, M, np.array([0]), G)


def test_environment_turns_the_compiled_path_off(monkeypatch):
    monkeypatch.setenv("SDOT_NAS_COMPILED", "0")
    assert emd_module._build_compiled() == "turned off by SDOT_NAS_COMPILED"


def test_compiled_and_loop_give_the_same_distances():
    """The whole iFGW engine (CG with tracked twins, emd starts) on NB201 cell pairs: the same bits."""
    pytest.importorskip("numba")
    from hotnas.distances.ifgw import IFGWOptions, features_cached, ifgw_pairs
    from hotnas.spaces import get_space

    space = get_space("nb201")
    rng = np.random.default_rng(5)
    archs = [space.sample(rng) for _ in range(120)]
    opt = IFGWOptions()
    fa = [features_cached(space.to_cell(a), opt.features) for a in archs[:60]]
    fb = [features_cached(space.to_cell(a), opt.features) for a in archs[60:]]
    out = {}
    for flag in (True, False):
        use_compiled(flag)
        assert using_compiled()[0] is flag
        out[flag] = ifgw_pairs(fa, fb, IFGWOptions(lp="emd"))
    use_compiled(True)
    assert (out[True] > 0).sum() > 50
    np.testing.assert_array_equal(out[True], out[False])


def test_forest_test_compiled_equals_connected_components():
    """_unique_lp's compiled union-find and its scipy connected-components path agree (and on closed forms)."""
    pytest.importorskip("numba")
    from hotnas.distances.fgw_cg import _unique_lp

    rng = np.random.default_rng(6)
    R = np.where(rng.random((400, 6, 7)) < 0.3, 0.0, 1.0)  # zero reduced cost on ~30 % of the arcs
    R[0] = 1.0
    R[0, np.arange(6), np.arange(6)] = 0.0  # a matching: a forest
    R[1] = 0.0  # the complete bipartite graph: cycles
    out = {}
    for flag in (True, False):
        use_compiled(flag)
        out[flag] = _unique_lp(R)
    use_compiled(True)
    assert out[True][0] and not out[True][1]
    assert 20 < out[True].sum() < 380  # both answers occur
    np.testing.assert_array_equal(out[True], out[False])


def test_bad_shapes_and_rows_are_errors_naming_them(path):
    P, Q, M = _batch(np.random.default_rng(7), 3, 4, 5, ties=False)
    with pytest.raises(ValueError, match=r"G has shape \(3, 5, 4\)"):
        emd_rows(P, Q, M, np.array([0]), np.zeros((3, 5, 4)))
    with pytest.raises(ValueError, match=r"Q has shape"):
        emd_rows(P, Q[:, :4], M, np.array([0]), np.zeros(M.shape))
    with pytest.raises(ValueError, match=r"rows must lie in \[0, 3\), got 0..3"):
        emd_rows(P, Q, M, np.array([0, 3]), np.zeros(M.shape))
