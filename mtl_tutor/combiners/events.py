"""What a trainer tells a combiner besides each step's gradients: typed training events.

A combiner receives these through its one hook, :meth:`~mtl_tutor.combiners.base.Combiner.
on_event`. The trainer (and the widgets) send :class:`ColumnGroups` once before the first step
and :class:`EpochEnd` after every epoch to every combiner; :class:`LossesAfterStep` costs a
forward pass per task, so it is computed and sent only to combiners that list it in their
``events``. Losses are keyed by task name, never by position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ColumnGroups:
    """The layout of ``G``'s columns: (layer-group name, column slice) pairs, contiguous and in
    parameter order (embeddings, layer.0, ..., pooler for BERT). GradVac's per-layer targets and
    GradNorm's last shared layer read it; without it, all columns form one group."""

    groups: tuple[tuple[str, slice], ...]

    def __post_init__(self) -> None:
        if not self.groups:
            raise ValueError("ColumnGroups needs at least one (name, slice) group")


@dataclass(frozen=True)
class EpochEnd:
    """An epoch ended: the mean training loss of each task trained in it (DWA reads these).
    A task that had no step in the epoch has no entry."""

    epoch: int
    mean_losses: Mapping[str, float]


@dataclass(frozen=True)
class LossesAfterStep:
    """After the optimiser step, the same batches' losses again, per task of the step (FAMO)."""

    losses: Mapping[str, float]


TrainingEvent = ColumnGroups | EpochEnd | LossesAfterStep
