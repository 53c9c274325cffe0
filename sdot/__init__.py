"""sdot: semi-discrete optimal-transport gradient flows on R^d x G.

One problem (:class:`Problem`: a graph G times R^d, a potential f(x, g), a temperature T or schedule and a
rate law), several solvers behind one contract (``step(state) -> state``) and one front door::

    sdot.solve(sdot.Problem(space, potential, T=0.5), method="grid", initial=rho0, t_final=1.0, tau=0.1)

``method`` names a solver of :data:`SOLVERS` (``sdot.solvers``): the Eulerian grid solver (``grid``),
minimising-movement steps (``jko``, ``entropic-jko``), second-order dynamics (``hamiltonian``), Lagrangian
particles (``particles``, ``strang``, ``lie``, ``jump``) and the NAS rules (``nasgd``, ``nasagd``); add one with
:func:`register_solver`. See the module docstrings for the mathematics (``docs/architecture.md`` for the
map); derived formulas are exposed as options, never as the papers' own.
"""

from .diagnostics import (chi_square_to_gibbs, diagnose, dissipation, energy_dissipation_residual,
                          kl_to_gibbs, node_masses, tv_node_masses)
from .energy import FreeEnergy, gibbs_node_masses_quadratic
from .flow import Flow, Trajectory, solve
from .free_energy import (Entropy, GeneralFreeEnergy, Interaction, PorousMedium, gaussian_kernel,
                          get_internal_energy, quadratic_kernel)
from .grid import Grid, GridSolver, StabilityError
from .hamiltonian import DampedHamiltonian, GridHamiltonian, HamiltonianTrajectory
from .jko import EntropicJKOStep, JKOStep, two_point_distance
from .nas_rules import NASAGD, NASGD, QuadraticLadder, nasagd_mean_field, nasgd_mean_field, nasgd_step
from .particles import (NonFiniteError, ParticleSolver, ParticleState, birth_death_step, gibbs_node_masses,
                        jump_step, langevin_step, lie_step, ou_step, strang_step, underdamped_step)
from .potentials import CallablePotential, DoubleWellPotential, Potential, QuadraticPotential
from .problem import DensityState, HamiltonianState, Problem, Solver, State
from .rates import (RATE_LAWS, RateLaw, get_rate_law, logmean, logmean_derivatives, logmean_second_derivatives,
                    logmean_with_derivatives, proposal_acceptance, register_rate_law)
from .schedules import SCHEDULES, get_schedule
from .solvers import SOLVERS, SolverBase, get_solver, make_solver, register_solver
from .space import SemiDiscreteSpace

__all__ = [
    "SemiDiscreteSpace", "Potential", "QuadraticPotential", "DoubleWellPotential", "CallablePotential",
    "RateLaw", "RATE_LAWS", "get_rate_law", "register_rate_law", "logmean", "proposal_acceptance",
    "logmean_with_derivatives", "logmean_derivatives", "logmean_second_derivatives",
    "Problem", "State", "Solver", "DensityState", "HamiltonianState", "SOLVERS", "SolverBase", "register_solver",
    "get_solver", "make_solver",
    "FreeEnergy", "gibbs_node_masses_quadratic",
    "GeneralFreeEnergy", "Entropy", "PorousMedium", "Interaction", "get_internal_energy", "quadratic_kernel",
    "gaussian_kernel",
    "Grid", "GridSolver", "StabilityError", "JKOStep", "EntropicJKOStep", "two_point_distance",
    "DampedHamiltonian", "GridHamiltonian", "HamiltonianTrajectory", "Flow", "Trajectory", "solve", "SCHEDULES",
    "get_schedule",
    "node_masses", "dissipation", "energy_dissipation_residual", "kl_to_gibbs", "chi_square_to_gibbs",
    "tv_node_masses", "diagnose",
    "ParticleState", "ParticleSolver", "jump_step", "langevin_step", "ou_step", "underdamped_step",
    "strang_step", "lie_step", "birth_death_step", "gibbs_node_masses", "NonFiniteError",
    "NASGD", "NASAGD", "nasgd_step", "nasgd_mean_field", "nasagd_mean_field", "QuadraticLadder",
]
