"""sdot: semi-discrete optimal-transport gradient flows on R^d x G."""

from .rates import get_rate_law, logmean
from .space import SemiDiscreteSpace
from .potentials import CallablePotential, DoubleWellPotential, Potential, QuadraticPotential

__all__ = ["SemiDiscreteSpace", "Potential", "QuadraticPotential", "DoubleWellPotential", "CallablePotential",
           "get_rate_law", "logmean"]
