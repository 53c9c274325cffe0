"""Moved to :mod:`hotnas.bo.gp` (the GP on a distance kernel); this module re-exports it."""

from .bo.gp import *  # noqa: F401,F403
from .bo.gp import PSD_POLICIES, DistanceGP, NotPSDError  # noqa: F401
