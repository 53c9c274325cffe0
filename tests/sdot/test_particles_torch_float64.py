"""The particle solver's torch path on the CPU in float64 gives the numpy path's results to 1e-10
when both see the same random numbers (issue 17): the draws are replayed from one stream into both."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import sdot.particles.random as draws  # noqa: E402
from sdot import QuadraticPotential, SemiDiscreteSpace  # noqa: E402
from sdot.backend import is_torch  # noqa: E402
from sdot.particles import ParticleState, jump_rates, langevin_step, strang_step  # noqa: E402


class Replay:
    """A numpy-Generator look-alike (the calls the particle steps make) drawing from a seeded stream."""

    def __init__(self, seed: int):
        self.g = np.random.default_rng(seed)

    def random(self, size=None, out=None):
        if out is not None:
            out[...] = self.g.random(out.shape)
            return out
        return self.g.random(size)

    def standard_normal(self, size=None, dtype=np.float64, out=None):
        if out is not None:
            out[...] = self.g.standard_normal(out.shape)
            return out
        return self.g.standard_normal(size).astype(dtype)


@pytest.fixture
def replayed(monkeypatch):
    """Route the torch path's draws through a Replay stream (same order of draws as numpy)."""
    stream = {}

    def uniform(state, n):
        if is_torch(state.x):
            return torch.as_tensor(stream["r"].random(n), dtype=torch.float64, device=state.x.device)
        return state.rng.random(n)

    def normal(state, shape):
        if is_torch(state.x):
            return torch.as_tensor(stream["r"].standard_normal(shape), dtype=state.x.dtype, device=state.x.device)
        return state.rng.standard_normal(shape, dtype=state.x.dtype)

    monkeypatch.setattr(draws, "uniform", uniform)  # every particle step draws through sdot.particles.random
    monkeypatch.setattr(draws, "normal", normal)
    return stream


def _problem(N=3000, K=6, d=2, seed=0):
    rng = np.random.default_rng(seed)
    space = SemiDiscreteSpace.path(K, dim=d)
    f = QuadraticPotential(rng.uniform(0.5, 2.0, K), rng.uniform(0.0, 1.0, K), rng.normal(size=(K, d)))
    return space, f, rng.normal(size=(N, d)), rng.integers(0, K, N)


def _pair(x0, g0, seed):
    s_np = ParticleState(x0.copy(), g0.copy(), rng=0)
    s_np.rng = Replay(seed)
    s_t = ParticleState(torch.as_tensor(x0.copy()), torch.as_tensor(g0.copy()), rng=0)
    return s_np, s_t


def test_jump_rates_agree_in_float64():
    space, f, x0, g0 = _problem()
    nbr_n, r_n = jump_rates(x0, g0, space, f, "glauber", 0.7)
    nbr_t, r_t = jump_rates(torch.as_tensor(x0), torch.as_tensor(g0), space, f, "glauber", 0.7)
    assert np.array_equal(nbr_n, nbr_t.numpy())
    assert np.abs(r_n - r_t.numpy()).max() < 1e-10 * max(1.0, np.abs(r_n).max())  # measured 1.6e-12


@pytest.mark.parametrize("diffusion", ["langevin", "ou"])
def test_strang_steps_agree_with_replayed_draws(replayed, diffusion):
    space, f, x0, g0 = _problem(seed=1)
    s_np, s_t = _pair(x0, g0, seed=5)
    replayed["r"] = Replay(5)
    jumps = 0
    for _ in range(6):
        strang_step(s_np, space, f, "glauber", T=0.5, dt=0.05, diffusion=diffusion)
        strang_step(s_t, space, f, "glauber", T=0.5, dt=0.05, diffusion=diffusion)
        jumps += s_np.info.n_jumps
        assert s_np.info.n_jumps == s_t.info.n_jumps
    assert jumps > 100  # the jump part was exercised
    assert np.array_equal(s_np.g, s_t.g.numpy())
    assert np.abs(s_np.x - s_t.x.numpy()).max() < 1e-10


def test_gradient_descent_step_agrees():  # T = 0: no draws at all
    space, f, x0, g0 = _problem(seed=2)
    s_np, s_t = _pair(x0, g0, seed=0)
    for _ in range(5):
        langevin_step(s_np, f, T=0.0, dt=0.1)
        langevin_step(s_t, f, T=0.0, dt=0.1)
    assert np.abs(s_np.x - s_t.x.numpy()).max() < 1e-12
