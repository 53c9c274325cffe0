"""Moved to :mod:`hotnas.flows.independent` (``IndependentFlow``); re-exported here."""

from hotnas.flows.independent import *  # noqa: F401,F403
from hotnas.flows.independent import (JUMP_INITS, OPTIMIZERS, IndependentFlow,  # noqa: F401
                                      IndependentFlowResult)
from hotnas.flows.base import FORWARD_COST, NONFINITE_POLICIES, check_nonnegative, check_positive  # noqa: F401
