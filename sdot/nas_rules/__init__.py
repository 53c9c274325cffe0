"""NAS-faithful particle rules: NASGD (spec ``semi-discrete-flow.md`` 6.4) and NASAGD (6.5).

As in the reference code of Paper 2 [reference code: EvAI], particles carry **node labels only**;
the weights live on the node (one weight vector x_g per node, trained elsewhere), and the node
energy ``E_g = f(x_g, g)`` drives the jumps. Both rules are explicit (first-order) and T = 0.

NASGD (upwind, flow 4.4)
    ``P(g -> g') = dt c w(g, g') (E_g - E_g')_+`` per step, one uniform per particle compared with
    the cumulative sums of these probabilities (EvAI ``update_velocity_mobility``; there
    ``c = c_mut * 50`` and the local graph is complete with unit weights).
NASAGD (velocity potential, 4.5 without kinetic terms)
    per step: adaptive restart check, then ``phi_g <- phi_g - (dt / c_p) E_g``, then
    ``P(g -> g') = dt c w(g, g') (phi_g' - phi_g)_+``. Restart (O'Donoghue-Candes gradient restart,
    EvAI ``updateNesterov``): ``S = sum_g sum_{g' ~ g} (E_g' - E_g)(phi_g' - phi_g) N_g'``; if S >= 0,
    or only one node carries particles, phi is reset to 0.

The mean-field limits (N -> infinity, spec 7.2) are ``dm_g/dt = sum_g' w c [m_g' (E_g' - E_g)_+ -
m_g (E_g - E_g')_+]`` and its phi analogue; :func:`nasgd_mean_field` integrates them exactly over
steps with piecewise-constant energies (``scheme="ode"``) or returns the exact expectation of the
explicit particle rule (``scheme="expected"``, which differs from the ODE by O(dt)).

:class:`QuadraticLadder` is the synthetic landscape of spec 7.2: a path graph of "depths" with
``f(x, g) = a_g |x - m_g|^2 / 2 + c_g`` per node, each node's weights trained by gradient descent.

Vectorised: a step costs O(N) plus O(n_jumpers * max_degree); node-level tables are O(K * D).
numpy or torch labels (through :class:`~sdot.particles.ParticleState`).

Modules: ``rules`` (label jumps, NASGD, NASAGD), ``mean_field`` (the N -> infinity limits),
``ladder`` (the synthetic landscape).
"""

from .ladder import QuadraticLadder, steps_to_reach
from .mean_field import nasagd_mean_field, nasgd_mean_field, upwind_generator
from .rules import (NASAGD, NASGD, label_jump_step, nasagd_probabilities, nasgd_probabilities, nasgd_step,
                    neighbour_table_like, restart_statistic)  # noqa: F401  (neighbour_table_like: kept importable)

__all__ = [
    "nasgd_probabilities",
    "nasagd_probabilities",
    "label_jump_step",
    "nasgd_step",
    "restart_statistic",
    "NASGD",
    "NASAGD",
    "upwind_generator",
    "nasgd_mean_field",
    "nasagd_mean_field",
    "QuadraticLadder",
    "steps_to_reach",
]
