"""Eulerian finite volumes for the flow on R^d x G, d = 0, 1, 2 (spec ``semi-discrete-flow.md`` 7.1).

One idea per module: :mod:`~sdot.grid.geometry` (the box and its cells), :mod:`~sdot.grid.density`
(density checks, the discrete Gibbs density, step counts), :mod:`~sdot.grid.generator` (the Markov
generator of the linear laws), :mod:`~sdot.grid.stepping` (implicit Euler, Crank–Nicolson, splitting,
log-mean Newton), :mod:`~sdot.grid.expm` (the guarded exponential reference) and
:mod:`~sdot.grid.solver` (:class:`GridSolver`). The log-mean and its derivatives live beside the rate laws
in :mod:`sdot.rates`.

The box ``[lower, upper]^d`` is cut into ``n^d`` equal cells of side ``h`` with zero-flux walls. The
unknowns are cell averages ``rho[g, i]`` (shape ``(K, M)``, ``M = n^d``); the mass is
``rho.sum() * h^d``. Cells of a 2-d grid are numbered row-major: cell ``(i0, i1)`` is ``i0 * n + i1``
and ``i0`` runs along the first coordinate.

**Linear laws** (``glauber``, ``metropolis``, ``upwind``) give a Markov generator ``Q`` on the ``K M``
states ``(g, i)`` (flattened ``g * M + i``) and the system ``d/dt rho = Q^T rho``:

* transport between neighbouring cells i, j of the same node (T > 0), square-root (SQRA)
  Scharfetter–Gummel-type rates ``k(i -> j) = (T / h^2) exp((f_i - f_j) / (2T))``; or exact
  Scharfetter–Gummel ``(T / h^2) B((f_j - f_i) / T)`` with ``B(z) = z / (e^z - 1)`` (``spatial="sg"``);
  at T = 0, upwind transport with velocity ``-grad f``: ``k(i -> j) = (f_i - f_j)_+ / h^2``;
* reaction inside a cell: ``k((g, i) -> (g', i)) = law.rate(f(x_i, g), f(x_i, g'), w(g, g'), T)``.

Both SQRA / SG face rates and the reversible laws satisfy detailed balance with respect to the
discrete Gibbs weights ``pi[g, i] = exp(-f(x_i, g) / T)`` exactly, so ``pi`` (normalised) is the
exact discrete stationary state. Off-diagonal entries are non-negative and rows sum to zero.

Time stepping: implicit Euler ``(I - tau Q^T) rho' = rho`` (an M-matrix: positive and mass
conserving for every tau; one sparse LU per tau, reused), Crank–Nicolson, explicit Euler (with a
stability check), ``scipy.sparse.linalg.expm_multiply`` as a reference, and ``split``: Lie
splitting into implicit transport (K independent spatial blocks) and implicit reaction (M
independent K x K blocks). The direct LU of the coupled system fills in badly for large K n^d
(2-d space times an expander-like graph behaves like a 3-d problem); ``split`` keeps the cost
linear in the number of unknowns at the price of an O(tau) splitting error.

**The nonlinear law** ``logmean`` (4.2) keeps the same transport and uses the reaction
``R_g = sum_h w [T (rho_h - rho_g) + Lambda(rho_g, rho_h) (f_h - f_g)] / kappa`` per cell; stepped
explicitly (refusing ``dt`` above ``1 / max exit rate`` of the current state) or by implicit Euler
with Newton's method.

Example
-------
>>> import numpy as np
>>> from sdot import SemiDiscreteSpace, QuadraticPotential
>>> from sdot.grid import Grid, GridSolver
>>> space = SemiDiscreteSpace.path(2, dim=1)
>>> f = QuadraticPotential(a=[1.0, 2.0], c=[0.0, 0.1], m=[[0.5], [-0.5]])
>>> grid = Grid(lower=-4, upper=4, n_cells=64, dim=1)
>>> solver = GridSolver(space, f, grid, T=0.5)
>>> rho = solver.evolve(solver.gibbs(), t_final=1.0, tau=0.1)
>>> bool(np.allclose(rho, solver.gibbs(), atol=1e-12))
True
"""

from ..rates import logmean_derivatives, logmean_with_derivatives
from .density import _check_tau  # noqa: F401 - a private name sdot.jko imports from here
from .density import check_density, gibbs_density, n_steps
from .expm import expm_apply
from .generator import SPATIAL, check_generator, forward_operator, reaction_edges, transport_edges
from .geometry import Grid
from .solver import METHODS, GridSolver, StabilityError

__all__ = ["Grid", "GridSolver", "StabilityError", "logmean_derivatives", "logmean_with_derivatives",
           "check_density", "gibbs_density", "n_steps", "METHODS", "SPATIAL", "expm_apply", "transport_edges",
           "reaction_edges", "forward_operator", "check_generator"]
