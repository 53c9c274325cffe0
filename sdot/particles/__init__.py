"""Lagrangian particle solver for the semi-discrete flow on R^d x G (spec ``semi-discrete-flow.md`` 7.2).

The measure is carried by N particles, ``mu_N = (1/N) sum_k delta_(X_k, G_k)``. One step of the linear
reaction-diffusion system 4.3 is split (Strang) into a move in x at fixed node and a jump on G at
fixed x:

* **Langevin** (Euler-Maruyama) ``X <- X - dt grad_x f(X, G) + sqrt(2 T dt) xi``;
* **exact Ornstein-Uhlenbeck** for :class:`~sdot.potentials.QuadraticPotential`
  ``X <- m_g + (X - m_g) e^{-a_g dt} + sqrt(T/a_g (1 - e^{-2 a_g dt})) xi`` (no time-step bias, so
  that errors in the jump part cannot hide behind it);
* **underdamped Langevin** (BAOAB, Leimkuhler-Matthews) on (X, P) with friction gamma;
* **jump** at fixed x: total rate ``lambda(X, G) = sum_{g'} k(G -> g'; X)`` from the rate-law registry
  (:mod:`sdot.rates`); the particle leaves with probability ``1 - exp(-dt lambda)`` to g' with
  probability ``k(G -> g'; X) / lambda``. ``method="exact"`` continues the fixed-x chain after the
  first jump until time dt is used up (exact in law for any dt), ``"single"`` allows one jump per
  step, ``"explicit"`` uses the first-order probability ``dt lambda`` (the NAS code's rule) and
  refuses or sub-steps when ``dt max lambda >= 1``;
* **birth-death** (Lu-Lu-Nolen): a *different geometry* (Hellinger / Fisher-Rao), not the graph
  metric; it realises ``d/dt rho = -rho (log(rho/pi_T) - <log(rho/pi_T)>)`` and needs a density
  estimate (a KDE per node for d <= 2, or Gibbs conditional laws for analytic potentials).

Everything is vectorised over particles: a jump step costs O(N * max_degree) through a padded
neighbour table built once from the graph's CSR structure, and evaluates f only at each particle's
own node and its neighbours. numpy arrays are the default; torch tensors (CPU or CUDA) go through
the same code with a ``torch.Generator``.

**Non-finite policy.** Every step takes ``nonfinite = "raise" | "freeze" | "reset"`` for particles
whose potential value, gradient, rate or new position is NaN or infinite:
``"raise"`` raises :class:`NonFiniteError` naming the particles (``.indices``) and leaves the state
as it was before the elementary step that met them (in a composite Strang/Lie step the sub-steps
already completed stay applied); ``"freeze"`` leaves them where they are for this step (no move,
no jump); ``"reset"`` replaces each one by a copy (x, g, p) of a uniformly chosen healthy particle
(a birth-death replacement, N stays fixed). The affected particles are reported in
``state.info.nonfinite`` (indices; ``state.info.nonfinite_mask(N)`` gives the mask). Nothing
non-finite is ever written into the state. A rate of ``+inf`` *into* a
node is legitimate only as ``f = +inf`` there (an infinite barrier gives rate 0 under the shipped
laws); NaN anywhere, or ``f = +-inf`` at a particle's own node, is flagged.

Steps update ``state`` in place and return it; ``state.copy()`` takes a snapshot. Elementary steps
advance ``state.t`` by their dt; composite steps (Strang, Lie, :class:`ParticleSolver`) advance it
once per full step.

Modules (one idea each): ``state`` (ParticleState, StepInfo), ``random`` (the draws), ``nonfinite``
(the policy), ``arrays`` / ``workspace`` / ``kernels`` (one numpy/torch code path, scratch buffers, the
fast quadratic kernel), ``diffusion`` (Langevin, OU, underdamped), ``jumps`` (neighbour table, rates,
jump_step), ``splitting`` (Strang, Lie), ``birth_death`` (birth-death, Gibbs node masses), ``solver``
(ParticleSolver, MeanFieldPotential).

Example
-------
>>> import numpy as np
>>> from sdot import SemiDiscreteSpace, QuadraticPotential
>>> from sdot.particles import ParticleState, strang_step
>>> space = SemiDiscreteSpace.path(3, dim=1)
>>> f = QuadraticPotential([1.0, 2.0, 0.5], [0.0, 0.3, 0.1], [[-1.0], [0.0], [1.0]])
>>> rng = np.random.default_rng(0)
>>> s = ParticleState(rng.normal(size=(1000, 1)), rng.integers(0, 3, 1000), rng=1)
>>> s = strang_step(s, space, f, "glauber", T=0.5, dt=0.05, diffusion="ou")
>>> s.node_fractions(3).shape
(3,)
"""

from .birth_death import birth_death_step, gibbs_node_masses, node_log_partition
from .diffusion import DIFFUSIONS, langevin_step, ou_step, underdamped_step
from .jumps import JUMP_METHODS, NeighbourTable, jump_rates, jump_step, neighbour_table
from .nonfinite import NONFINITE_POLICIES, NonFiniteError
from .solver import MeanFieldPotential, ParticleSolver
from .splitting import lie_step, strang_step
from .state import ParticleState, StepInfo
from .workspace import clear_workspace

# the names of the one-module era that other code imported (sdot.nas_rules before it used the public ones)
from .arrays import nonzero as _nonzero  # noqa: E402, F401
from .nonfinite import handle_nonfinite as _handle_nonfinite  # noqa: E402, F401
from .random import normal as _normal, uniform as _uniform  # noqa: E402, F401

__all__ = [
    "ParticleState",
    "StepInfo",
    "NonFiniteError",
    "NeighbourTable",
    "neighbour_table",
    "langevin_step",
    "ou_step",
    "underdamped_step",
    "jump_step",
    "jump_rates",
    "strang_step",
    "lie_step",
    "birth_death_step",
    "node_log_partition",
    "gibbs_node_masses",
    "ParticleSolver",
    "MeanFieldPotential",
    "clear_workspace",
    "NONFINITE_POLICIES",
    "JUMP_METHODS",
    "DIFFUSIONS",
]
