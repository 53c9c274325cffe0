"""The search-space interface every space implements.

Architectures travel through the library as **canonical strings** (hashable, JSON-able, equal
for isomorphic cells), so optimisers, caches, checkpoints and logs never hold live objects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..cells import Network

__all__ = ["SearchSpace"]


class SearchSpace(ABC):
    """A set of architectures with a canonical string form and single-step mutations."""

    name: str = "space"

    @abstractmethod
    def canonical(self, arch: str) -> str:
        """Validate ``arch`` (raising ValueError naming the bad part) and return its canonical form."""

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> str:
        """A uniformly random architecture (canonical string)."""

    @abstractmethod
    def mutations(self, arch: str) -> list[str]:
        """All single-step mutation neighbours of ``arch`` (canonical, distinct, excluding arch)."""

    @abstractmethod
    def to_network(self, arch: str) -> "Network":
        """The cell-based network of ``arch`` (what distances compare)."""

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """One uniformly chosen single-step mutation of ``arch``."""
        nbrs = self.mutations(arch)
        return nbrs[int(rng.integers(len(nbrs)))]

    def enumerate(self) -> Iterator[str]:
        """Every architecture, when the space is small enough; otherwise NotImplementedError."""
        raise NotImplementedError(f"search space {self.name!r} cannot be enumerated")

    def __len__(self) -> int:
        raise TypeError(f"search space {self.name!r} has no finite size known")
