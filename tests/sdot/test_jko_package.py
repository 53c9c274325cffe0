"""sdot.jko as a package (issue 14) and the fast JKO step (issue 16): names, sizes, checks, errors, Newton pieces."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse.linalg as spla

import sdot.jko as jko
from sdot import QuadraticPotential, SemiDiscreteSpace
from sdot.grid import Grid
from sdot.jko import EntropicJKOStep, JKOSolveError, JKOStep

POINT = Grid(dim=0)


def _problem(d=1, n=40, K=3, seed=0):
    space = SemiDiscreteSpace.complete(K, dim=d)
    rng = np.random.default_rng(seed)
    pot = QuadraticPotential(a=np.ones(K), c=rng.uniform(0, 0.5, K), m=rng.uniform(-1, 1, (K, d)))
    grid = Grid(-3, 3, n, d)
    x = grid.centers
    rho = np.exp(-np.sum((x - 0.5) ** 2, axis=1) / 0.5)[None, :] * np.linspace(1, 2, K)[:, None]
    return space, pot, grid, rho / (rho.sum() * grid.cell_volume)


def test_public_names_and_module_sizes():
    for name in ("JKOStep", "EntropicJKOStep", "two_point_distance", "JKOResult", "JKOSolveError",
                 "entropic_limit_rhs", "THETAS", "SCHEMES"):
        assert name in jko.__all__ and hasattr(jko, name)
    from sdot.jko import _lambda_second  # the old private name still imports
    assert callable(_lambda_second)
    for f in Path(jko.__file__).parent.glob("*.py"):
        assert len(f.read_text().splitlines()) <= 700, f


def test_number_checks_name_the_bad_value():
    space, pot = SemiDiscreteSpace.path(2), QuadraticPotential(a=[1, 1], c=[0, 1])
    for T in (None, "hot", float("nan"), -1.0):
        with pytest.raises(ValueError, match="T > 0"):
            JKOStep(space, pot, POINT, T)
    with pytest.raises(ValueError, match="kappa"):
        JKOStep(space, pot, POINT, 1.0, kappa=0.0)
    with pytest.raises(ValueError, match="tol"):
        JKOStep(space, pot, POINT, 1.0, tol=-1e-9)
    with pytest.raises(ValueError, match="max_iter"):
        JKOStep(space, pot, POINT, 1.0, max_iter=0)
    with pytest.raises(ValueError, match="T > 0"):
        JKOStep(space, pot, POINT, 1.0).set_temperature(0.0)
    with pytest.raises(ValueError, match="eps"):
        EntropicJKOStep(space, pot, POINT, 1.0, eps=float("inf"))
    with pytest.raises(ValueError, match="max_iter"):
        EntropicJKOStep(space, pot, POINT, 1.0, eps=0.1, max_iter=-3)
    with pytest.raises(ValueError, match="tau"):
        EntropicJKOStep(space, pot, POINT, 1.0, eps=0.1).step(np.array([[0.5], [0.5]]), 0.0)


@pytest.mark.parametrize("n", [1, 200])  # dense (N <= 400) and sparse (spsolve) Laplacian solves
def test_disconnected_graph_gives_a_clear_error_not_a_linalg_error(n):
    W = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0.0]])  # node 2 is isolated
    grid = POINT if n == 1 else Grid(-1, 1, n, 1)
    d = grid.dim
    pot = QuadraticPotential(a=np.zeros(3), c=[0, 0.1, 0.2], dim=d) if d == 0 else \
        QuadraticPotential(a=np.ones(3), c=[0, 0.1, 0.2], m=np.zeros((3, 1)))
    J = JKOStep(SemiDiscreteSpace(W, dim=d), pot, grid, 0.5)
    a = np.full((3, n), 1.0 / (3 * n * grid.cell_volume))
    b = a.copy()
    b[2] *= 1.5
    b[0] *= 0.5  # mass moved from node 0 to the isolated node: no flux can do it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(JKOSolveError, match="singular"):
            J.action(a, b)


def test_warm_start_changes_the_start_not_the_step():
    space, pot, grid, rho = _problem(d=1, n=60, K=3)
    J = JKOStep(space, pot, grid, 0.5)
    r1 = J.step(rho, 0.02)
    r2 = J.step(r1.rho, 0.02)  # warm: the last step ended at r1.rho with the same tau
    cold = JKOStep(space, pot, grid, 0.5).step(r1.rho, 0.02)
    assert np.abs(r2.rho - cold.rho).max() <= 1e-9 * rho.max()
    assert r2.iterations <= cold.iterations
    assert abs(r2.info["mass_drift"]) < 1e-13


def _capture_newton(J):
    """Wrap the Newton-direction solve: record (Jacobian, rhs, direction) of every iteration."""
    seen, orig = [], J._newton_solve

    def wrap(Jm, data, rhs, *a):
        kept = data.copy()  # the banded LU overwrites it
        x, k = orig(Jm, data, rhs, *a)
        seen.append((Jm, kept, rhs, x))
        return x, k

    J._newton_solve = wrap
    return seen


def test_banded_newton_direction_equals_a_direct_sparse_solve():
    space, pot, grid, rho = _problem(d=1, n=30, K=3)
    J = JKOStep(space, pot, grid, 0.5)
    seen = _capture_newton(J)
    J.step(rho, 0.05)
    assert seen
    indices, indptr, nnz, _ = J._jacobian_pattern()
    flat = J._band_layout()[3]
    for _, band, rhs, x in seen:  # band storage read back on the CSR pattern
        from scipy.sparse import csr_matrix

        A = csr_matrix((band[flat], indices, indptr), shape=(rhs.size, rhs.size))
        ref = spla.spsolve(A.tocsc(), rhs)
        assert np.abs(x - ref).max() <= 1e-8 * np.abs(ref).max()


def test_2d_gmres_direction_meets_its_forcing_tolerance_and_the_step_converges():
    space, pot, grid, rho = _problem(d=2, n=10, K=3)
    J = JKOStep(space, pot, grid, 0.5)
    seen = _capture_newton(J)
    res = J.step(rho, 0.05)
    assert res.residual <= J.tol and abs(res.info["mass_drift"]) < 1e-13
    for Jm, _, rhs, x in seen:
        ref = spla.spsolve(Jm.tocsc(), rhs)
        assert np.linalg.norm(x - ref) <= 0.05 * np.linalg.norm(ref)  # inexact Newton: eta <= 1e-2 (scaled)
    x_last, ref_last = seen[-1][3], spla.spsolve(seen[-1][0].tocsc(), seen[-1][2])
    assert np.linalg.norm(x_last - ref_last) <= 1e-4 * np.linalg.norm(ref_last)


def test_2d_porous_medium_with_interaction_converges():
    # issue 16: nu Δ rho^2 with W = |x|^2 / 2 in 2-d did not converge (GMRES with the lumped preconditioner
    # stalled at the late barrier stages); with the exact local LU as preconditioner it does
    from sdot.free_energy import GeneralFreeEnergy, PorousMedium, quadratic_kernel

    grid = Grid(-2.5, 2.5, 12, 2)
    E = GeneralFreeEnergy(None, PorousMedium(2.0, nu=0.3), interaction=quadratic_kernel(1.0), n_nodes=1)
    J = JKOStep(SemiDiscreteSpace.path(1, dim=2), E, grid, max_iter=300)
    x = grid.centers
    r = np.exp(-np.sum((x - [0.3, -0.2]) ** 2, axis=1) / 0.3) * (1 + 0.5 * np.cos(3 * x[:, 0]))
    r = r[None] / (r.sum() * grid.cell_volume)
    F = [J.free_energy(r.ravel()) * grid.cell_volume]
    for _ in range(2):
        res = J.step(r, 0.25)
        r = res.rho
        F.append(res.info["free_energy"])
        assert res.residual <= 1e3 * J.tol and abs(res.info["mass_drift"]) < 1e-12 and r.min() > 0
    assert F[2] < F[1] < F[0]
