"""Moved to :mod:`hotnas.flows.base` (``FlowBase``, the one result type ``FlowResult``); re-exported here."""

from hotnas.flows.base import *  # noqa: F401,F403
from hotnas.flows.base import (FORWARD_COST, LR_SCHEDULES, NONFINITE_POLICIES, FlowBase, FlowResult,  # noqa: F401
                               check_nonnegative, check_positive, jump_rate_law)
