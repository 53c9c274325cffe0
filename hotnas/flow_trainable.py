"""Moved to :mod:`hotnas.flows.trainable` (``TrainableFlow``); re-exported here."""

from hotnas.flows.trainable import *  # noqa: F401,F403
from hotnas.flows.trainable import FORWARD_COST, TrainableFlow, TrainableFlowResult  # noqa: F401
