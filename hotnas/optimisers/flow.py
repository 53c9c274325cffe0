"""Moved to :mod:`hotnas.flows.tabular` (the tabular flow), :mod:`hotnas.flows.schedules` (temperature schedules)
and :mod:`hotnas.flows.potentials` (table potentials); this module re-exports them for old imports."""

from hotnas.flows.potentials import robust_spread, table_potential  # noqa: F401
from hotnas.flows.schedules import temperature_schedule  # noqa: F401
from hotnas.flows.tabular import *  # noqa: F401,F403
from hotnas.flows.tabular import (DEFAULT_BUDGET, NONFINITE_POLICIES, POTENTIALS, RULES, SURROGATES,  # noqa: F401
                                  TEMPERATURE_UNITS, FlowOptimiser)
from hotnas.flows.tabular_surrogate import _PairsAdapter  # noqa: F401
from sdot.jump import GAP_CAP as _GAP_CAP  # noqa: F401
