"""Bayesian optimisation on architecture distances, in small swappable pieces (BoTorch-like).

* kernel, a correlation ``r(D; l)`` of a distance — :mod:`hotnas.bo.kernels` (add: ``@register_kernel(name)``);
* model, the exact GP on a distance matrix with ML-II and a PSD policy — :mod:`hotnas.bo.gp`;
* output transform of the observed values — :mod:`hotnas.bo.transforms` (``TRANSFORMS``);
* the model's output over a finite set — :mod:`hotnas.bo.posterior` (any model that fills a
  ``Posterior`` plugs into the acquisitions);
* acquisition, one job: score candidates — :mod:`hotnas.bo.acquisition` (EI, LCB),
  :mod:`hotnas.bo.knowledge_gradient` (exact KG) (add: ``@register_acquisition(name)``);
* candidate generator — :mod:`hotnas.bo.candidates` (any ``CandidateGenerator``);
* batches of q > 1 — :mod:`hotnas.bo.batch` (kriging believer).

The optimiser loop that assembles them behind ask/tell is :class:`hotnas.bo.optimiser.HotnasBO`
(``get_optimiser("hotnas", space)``; ``hotnas.bo.HotnasBO`` loads it on first access, so importing the
pieces loads no optimiser); its distance cache is :class:`hotnas.distances.cache.DistanceCache`.
Importing this package registers every kernel and acquisition below.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .acquisition import (ACQUISITIONS, Acquisition, ConfidenceBound, ExpectedImprovement, expected_positive_part,
                          get_acquisition, normal_pdf, register_acquisition)
from .batch import kriging_believer
from .candidates import CandidateGenerator, CandidatePool
from .gp import PSD_POLICIES, DistanceGP, NotPSDError
from .kernels import KERNELS, Kernel, LaplaceKernel, RBFKernel, get_kernel, min_eigenvalue, project_psd, register_kernel
from .knowledge_gradient import KnowledgeGradient, kg_envelope, kg_envelope_batch
from .posterior import Posterior, gp_posterior
from .registration import register_named
from .transforms import TRANSFORMS, copula, get_transform, identity

__all__ = ["ACQUISITIONS", "Acquisition", "ConfidenceBound", "ExpectedImprovement", "KnowledgeGradient",
           "expected_positive_part", "get_acquisition", "normal_pdf", "register_acquisition", "kg_envelope",
           "kg_envelope_batch", "kriging_believer", "CandidateGenerator", "CandidatePool", "PSD_POLICIES",
           "DistanceGP", "NotPSDError", "KERNELS", "Kernel", "LaplaceKernel", "RBFKernel", "get_kernel",
           "min_eigenvalue", "project_psd", "register_kernel", "Posterior", "gp_posterior", "register_named",
           "TRANSFORMS", "copula", "get_transform", "identity", "HotnasBO"]


def __getattr__(name: str) -> Any:
    if name == "HotnasBO":  # the optimiser sits above hotnas.optimisers.base: loaded on first use only
        return import_module(".optimiser", __name__).HotnasBO
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
