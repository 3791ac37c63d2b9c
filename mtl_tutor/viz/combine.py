"""The one way viz code obtains a combined direction: a fresh combiner from ``get_combiner``.

A fresh combiner per call keeps a redraw independent of the previous ones (some methods hold
state). Every combiner is told its tasks' names and, through the
:class:`~mtl_tutor.combiners.events.ColumnGroups` event, that ``G``'s columns form one group
(the layout GradVac and GradNorm read), as the trainer tells it the model's layer groups.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from mtl_tutor.combiners import ColumnGroups, Combiner, get_combiner


def fresh_combiner(name: str, num_params: int, tasks: Sequence[str], seed: int = 0) -> Combiner:
    """``get_combiner(name, seed, tasks)`` told that all ``num_params`` columns form one group."""
    combine = get_combiner(name, seed=seed, tasks=tasks)
    combine.on_event(ColumnGroups((("all", slice(0, num_params)),)))
    return combine


def combined_direction(name: str, G: Tensor, losses: Tensor, tasks: Sequence[str],
                       seed: int = 0) -> Tensor:
    """The direction ``d`` [P] a fresh ``name`` combiner returns for ``G`` [K, P] (rows named
    ``tasks``) and ``losses``; a ValueError when it is not finite."""
    d = fresh_combiner(name, G.shape[1], tasks, seed)(G, losses).detach()
    if not bool(d.isfinite().all()):
        raise ValueError(f"{name} gave a direction that is not finite: {d.tolist()}")
    return d
