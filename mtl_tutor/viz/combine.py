"""The one way viz code obtains a combined direction: a fresh combiner from ``get_combiner``.

A fresh combiner per call keeps a redraw independent of the previous ones (some methods hold
state). Every combiner is told the layout of ``G``'s columns as one group, which GradNorm needs
and the others ignore.
"""

from __future__ import annotations

from torch import Tensor

from mtl_tutor.combiners import Combiner, get_combiner


def fresh_combiner(name: str, num_params: int, seed: int = 0) -> Combiner:
    """``get_combiner(name, seed)`` told that all ``num_params`` columns form one group."""
    combine = get_combiner(name, seed=seed)
    combine.attach([("all", slice(0, num_params))])
    return combine


def combined_direction(name: str, G: Tensor, losses: Tensor, seed: int = 0) -> Tensor:
    """The direction ``d`` [P] a fresh ``name`` combiner returns for ``G`` [K, P] and ``losses``."""
    return fresh_combiner(name, G.shape[1], seed)(G, losses).detach()
