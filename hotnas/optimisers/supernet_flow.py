"""Moved to :mod:`hotnas.flows.supernet_optimiser` (optimiser ``"supernet-flow"``); re-exported here."""

from hotnas.flows.supernet_optimiser import *  # noqa: F401,F403
from hotnas.flows.supernet_optimiser import SupernetFlowOptimiser  # noqa: F401
