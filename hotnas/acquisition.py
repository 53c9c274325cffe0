"""Moved to :mod:`hotnas.bo` (acquisitions: :mod:`hotnas.bo.acquisition`, the knowledge gradient:
:mod:`hotnas.bo.knowledge_gradient`, the posterior they read: :mod:`hotnas.bo.posterior`); this module
re-exports them."""

from .bo.acquisition import *  # noqa: F401,F403
from .bo.acquisition import (ACQUISITIONS, Acquisition, ConfidenceBound, ExpectedImprovement,  # noqa: F401
                             get_acquisition, register_acquisition)
from .bo.knowledge_gradient import KnowledgeGradient, kg_envelope, kg_envelope_batch  # noqa: F401
from .bo.posterior import Posterior  # noqa: F401

__all__ = ["Posterior", "Acquisition", "KnowledgeGradient", "ExpectedImprovement", "ConfidenceBound",
           "ACQUISITIONS", "register_acquisition", "get_acquisition", "kg_envelope", "kg_envelope_batch"]
