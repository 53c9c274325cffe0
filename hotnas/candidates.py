"""Moved to :mod:`hotnas.bo.candidates` (candidate pools); this module re-exports it."""

from .bo.candidates import *  # noqa: F401,F403
from .bo.candidates import CandidateGenerator, CandidatePool  # noqa: F401
