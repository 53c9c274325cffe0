"""Moved to :mod:`hotnas.bo.kernels` (kernels on distances, the PSD projection); this module re-exports it."""

from .bo.kernels import *  # noqa: F401,F403
from .bo.kernels import (KERNELS, Kernel, LaplaceKernel, RBFKernel, get_kernel, min_eigenvalue,  # noqa: F401
                         project_psd, register_kernel)
