"""Moved to :mod:`hotnas.flows.surrogate` (the surrogate-guided flow, optimiser ``"flow-bo"``); re-exported here."""

from hotnas.flows.surrogate import *  # noqa: F401,F403
from hotnas.flows.surrogate import GUIDES, SELECTS, FlowBO, FlowPool, ThompsonChoice, metropolis_accept  # noqa: F401
