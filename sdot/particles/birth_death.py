"""Birth-death (Lu-Lu-Nolen 2019) toward the Gibbs law, and the Gibbs node masses in closed form.

Birth-death is **a different geometry** (Hellinger / Fisher-Rao), not the graph transport metric: it realises
``d/dt rho = -rho (log(rho/pi_T) - <log(rho/pi_T)>)`` and needs a density estimate (a KDE per node for
d <= 2, or the Gibbs conditional laws of an analytic potential). Node masses
``p_g ∝ exp(-c_g/T) (2 pi T / a_g)^{d/2}`` (spec 8.6) come from :func:`node_log_partition`.
"""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..potentials import Potential, QuadraticPotential
from ..space import SemiDiscreteSpace
from ..validation import one_of, positive
from . import random as draws
from .nonfinite import check_policy, handle_nonfinite
from .state import ParticleState, StepInfo, check_state, clone_particles

__all__ = ["DENSITIES", "node_log_partition", "gibbs_node_masses", "birth_death_step"]

DENSITIES = ("kde", "gibbs_conditional")


def node_log_partition(potential: Potential, T: float) -> np.ndarray:
    """log Z_g = log int exp(-f(x, g)/T) dx per node, in closed form where one exists.

    QuadraticPotential (a_g > 0): ``-c_g / T + (d/2) log(2 pi T / a_g)``; d = 0 potentials:
    ``-f(g) / T``. Hence the Gibbs node masses ``p_g ∝ exp(-c_g/T) (2 pi T / a_g)^{d/2}`` (spec 8.6).
    """
    T = positive("T", T)
    if isinstance(potential, QuadraticPotential):
        d = potential.dim
        if d and np.any(potential.a <= 0):
            raise ValueError("node Gibbs masses need a_g > 0 for every node (confining potential)")
        with np.errstate(divide="ignore"):
            return -potential.c / T + (0.5 * d * np.log(2 * np.pi * T / potential.a) if d else 0.0)
    if getattr(potential, "dim", None) == 0:
        K = potential.n_nodes
        return -np.asarray(potential(np.zeros((K, 0)), np.arange(K)), dtype=float) / T
    raise TypeError(f"no closed-form node partition function for {type(potential).__name__}")


def gibbs_node_masses(potential: Potential, T: float) -> np.ndarray:
    """Stationary node masses p_g = Z_g / sum Z (closed form, see :func:`node_log_partition`)."""
    lz = node_log_partition(potential, T)
    lz = lz - lz.max()
    p = np.exp(lz)
    return p / p.sum()


def _log_density_ratio(state: ParticleState, potential: Potential, T: float, density: str, n_nodes: int,
                       bandwidth: float | str | None, max_kde_points: int) -> np.ndarray:
    """log(rho_hat / pi_T) at every particle, up to one additive constant (numpy, shape (N,))."""
    x, g = to_numpy(state.x).astype(float, copy=False), to_numpy(state.g)
    N, d = x.shape
    counts = np.bincount(g, minlength=n_nodes)
    log_mass = np.full(n_nodes, -np.inf)
    np.log(counts / N, out=log_mass, where=counts > 0)
    if density == "gibbs_conditional":
        # rho_hat(x, g) = (N_g / N) pi_T(x | g): log(rho_hat/pi_T) = log(N_g/N) - log Z_g + const
        return (log_mass - node_log_partition(potential, T))[g]
    # KDE per node (d <= 2)
    fx = to_numpy(potential(state.x, state.g)).astype(float)
    L = np.empty(N)
    if d == 0:
        L[:] = log_mass[g]
    else:
        from scipy.stats import gaussian_kde

        sub_rng = np.random.default_rng(int(to_numpy(draws.integers(state, 2**31 - 1, 1))[0]))
        order = np.argsort(g, kind="stable")
        starts = np.r_[0, np.cumsum(counts)]
        for k in range(n_nodes):  # a loop over nodes (K), never over particles
            members = order[starts[k]:starts[k + 1]]
            if members.size == 0:
                continue
            pts = x[members]
            ref = pts if members.size <= max_kde_points else pts[sub_rng.choice(members.size, max_kde_points,
                                                                                 replace=False)]
            try:
                if ref.shape[0] < d + 2:
                    raise np.linalg.LinAlgError("too few points")
                kde = gaussian_kde(ref.T, bw_method=bandwidth)
                L[members] = log_mass[k] + kde.logpdf(pts.T)
            except (np.linalg.LinAlgError, ValueError):
                # degenerate cloud: a Gaussian of width 1 around the points' mean
                mu = pts.mean(0)
                L[members] = log_mass[k] - 0.5 * ((pts - mu) ** 2).sum(1) - 0.5 * d * np.log(2 * np.pi)
    with np.errstate(invalid="ignore"):
        return L + fx / T


def birth_death_step(state: ParticleState, space: SemiDiscreteSpace, potential: Potential, T: float, dt: float, *,
                     density: str = "kde", bandwidth: float | str | None = None, max_kde_points: int = 2000,
                     nonfinite: str = "raise") -> ParticleState:
    """Birth-death step (Lu-Lu-Nolen 2019) toward pi_T — **a different geometry** (Hellinger /
    Fisher-Rao), not the graph transport metric of the flow.

    ``beta_k = log(rho_hat / pi_T)(X_k, G_k) - mean_j log(rho_hat / pi_T)(X_j, G_j)``. If beta_k > 0,
    particle k dies with probability ``1 - exp(-dt beta_k)`` and is replaced by a copy of a
    uniformly chosen other particle; if beta_k < 0 it is duplicated with probability
    ``1 - exp(-dt |beta_k|)`` over a uniformly chosen other particle. N stays fixed; in the limit
    this is ``d/dt rho = -rho (log(rho/pi_T) - <log(rho/pi_T)>)``. All events of a step are drawn
    from the state at its start (parallel version; conflicts are O(dt^2)).

    density : ``"kde"``
        one Gaussian KDE per node (scipy, d <= 2; at most ``max_kde_points`` reference points),
        times the node mass N_g/N; bias O(bandwidth^2) plus noise.
    density : ``"gibbs_conditional"``
        ``rho_hat(x, g) = (N_g/N) pi_T(x | g)`` with the node partition functions in closed form
        (:func:`node_log_partition`): corrects node masses only (any d).
    """
    check_state(state, potential, space)
    T, dt = positive("T", T), positive("dt", dt)
    check_policy(nonfinite)
    one_of("density", density, DENSITIES)
    if density == "kde" and state.dim > 2:
        raise ValueError(f"the KDE density estimate is for d <= 2 only (d = {state.dim}); "
                         "use density='gibbs_conditional' for an analytic potential")
    state.info = StepInfo()
    N = state.n_particles
    if N < 2:
        state.t += dt
        return state
    L = _log_density_ratio(state, potential, T, density, space.n_nodes, bandwidth, max_kde_points)
    bad = ~np.isfinite(L)
    if bad.any():
        idx = np.flatnonzero(bad)
        handle_nonfinite(state, idx, nonfinite, "density ratio in the birth-death step")
        L[idx] = np.nan
    ok = np.isfinite(L)
    beta = np.where(ok, L - L[ok].mean() if ok.any() else 0.0, 0.0)
    u = to_numpy(draws.uniform(state, N))
    prob = -np.expm1(-dt * np.abs(beta))
    event = (u < prob) & ok
    kill = np.flatnonzero(event & (beta > 0))
    dup = np.flatnonzero(event & (beta < 0))
    n_ev = kill.size + dup.size
    if n_ev:
        other = to_numpy(draws.integers(state, N - 1, n_ev))
        me = np.r_[kill, dup]
        other = other + (other >= me)                           # uniform over the others
        slots = np.r_[kill, other[kill.size:]]
        sources = np.r_[other[:kill.size], dup]
        clone_particles(state, slots, sources)                 # copies of the pre-step values
    state.info.births, state.info.deaths = int(dup.size), int(kill.size)
    state.t += dt
    return state
