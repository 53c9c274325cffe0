"""Damped Hamiltonian dynamics on a graph (spec 4.5, 8.9)."""

import numpy as np
import pytest

from sdot import QuadraticPotential, SemiDiscreteSpace
from sdot.hamiltonian import DampedHamiltonian

F3 = [0.0, 0.5, 0.2]
RHO0 = [0.6, 0.3, 0.1]


@pytest.mark.parametrize("theta", ["logmean", "logmean_pi", "arithmetic"])
def test_energy_conserved_without_damping(theta):
    h = DampedHamiltonian(SemiDiscreteSpace.path(3), F3, T=0.5, theta=theta)
    tr = h.run(RHO0, 5.0, 0.005)
    assert np.abs(tr.H - tr.H[0]).max() < 1e-6 * abs(tr.H[0])
    assert np.abs(tr.rho.sum(axis=1) - 1).max() < 1e-13
    assert tr.kinetic.max() > 1e-2  # it really moved


def test_two_nodes_conservation_with_potential_object():
    pot = QuadraticPotential(a=[1, 1], c=[0.0, 0.2])
    h = DampedHamiltonian(SemiDiscreteSpace.path(2, weight=2.0), pot, T=0.3)
    tr = h.run([0.4, 0.6], 4.0, 0.005)
    assert np.abs(tr.H - tr.H[0]).max() < 1e-6 * abs(tr.H[0])


@pytest.mark.parametrize("gamma", [0.7, "nesterov"])
def test_energy_decay_rate_is_minus_two_gamma_K(gamma):
    h = DampedHamiltonian(SemiDiscreteSpace.cycle(4), [0.0, 0.5, 0.2, 0.9], T=0.5, gamma=gamma)
    tr = h.run([0.4, 0.3, 0.2, 0.1], 4.0, 0.005, t0=1.0)
    tm = 0.5 * (tr.t[1:] + tr.t[:-1])
    g = 0.7 if gamma == 0.7 else 3.0 / tm
    dH = np.diff(tr.H) / np.diff(tr.t)
    Km = 0.5 * (tr.kinetic[1:] + tr.kinetic[:-1])
    assert np.all(dH <= 1e-12)
    assert np.abs(dH + 2 * g * Km).max() < 1e-3 * np.abs(dH).max()


def test_damped_flow_relaxes_to_gibbs_and_restart_never_raises_H():
    T = 0.5
    pi = np.exp(-np.array(F3) / T)
    pi /= pi.sum()
    h = DampedHamiltonian(SemiDiscreteSpace.path(3), F3, T=T, gamma=1.0)
    assert np.allclose(h.run(RHO0, 40.0, 0.05).rho[-1], pi, atol=1e-6)
    r = DampedHamiltonian(SemiDiscreteSpace.path(3), F3, T=T, restart="gradient")
    tr = r.run(RHO0, 10.0, 0.02)
    assert len(tr.restarts) > 0
    for tr_t in tr.restarts:
        k = int(np.argmin(np.abs(tr.t - tr_t)))
        assert tr.kinetic[k] == 0.0 and tr.H[k] <= tr.H[k - 1] + 1e-8


def test_hamiltonian_bad_input():
    with pytest.raises(ValueError, match="d = 0"):
        DampedHamiltonian(SemiDiscreteSpace.path(2, dim=1), [0, 1], T=1.0)
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        DampedHamiltonian(SemiDiscreteSpace.path(2), [0, 1], T=1.0, gamma=-1.0)
    with pytest.raises(ValueError, match="T > 0"):
        DampedHamiltonian(SemiDiscreteSpace.path(2), [0, 1], T=0.0, theta="logmean_pi")
    with pytest.raises(ValueError, match="total mass"):
        DampedHamiltonian(SemiDiscreteSpace.path(2), [0, 1], T=1.0).run([0.5, 0.6], 1.0, 0.1)
    with pytest.raises(ValueError, match="t0 > 0"):
        DampedHamiltonian(SemiDiscreteSpace.path(2), [0, 1], T=1.0, gamma="nesterov").run([0.5, 0.5], 1.0, 0.1)
    with pytest.raises(ValueError, match="negative"):
        DampedHamiltonian([[0, -1], [-1, 0]], [0, 1], T=1.0)
