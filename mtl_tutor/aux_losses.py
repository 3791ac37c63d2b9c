"""Auxiliary losses by name: terms added, times their weight, to a task's own loss.

======== =========================================================== ============
name     what                                                        where
======== =========================================================== ============
mnrl     multiple negatives ranking over the batch's positive pairs   losses.py
triplet  margin triplet loss with the hardest in-batch negative       losses.py
smart    SMART's smoothness-inducing adversarial regulariser          smart.py
bregman  SMART's Bregman proximal point term (a momentum teacher)     smart.py
======== =========================================================== ============

Each is built from the task's label kind and its keyword options (``weight`` among them), which
are declared, typed, by its constructor.
"""

from __future__ import annotations

from functools import partial

from .data.tasks import TaskSpec
from .losses import RankingLoss
from .smart import BregmanProximalPoint, SmoothnessRegulariser

AUX_LOSSES = {
    "mnrl": partial(RankingLoss, "mnrl"),
    "triplet": partial(RankingLoss, "triplet"),
    "smart": SmoothnessRegulariser,
    "bregman": BregmanProximalPoint,
}
AUX_LOSS_NAMES: tuple[str, ...] = tuple(AUX_LOSSES)


def build_aux_loss(name: str, task: TaskSpec, options: dict):
    """The auxiliary loss ``name`` for ``task`` with ``options``; a ValueError names a bad one."""
    if name not in AUX_LOSSES:
        raise ValueError(f"unknown auxiliary loss {name!r}; valid: {sorted(AUX_LOSSES)}")
    try:
        return AUX_LOSSES[name](task.label, **options)
    except TypeError as e:
        raise ValueError(f"bad options for auxiliary loss {name!r}: {options} ({e})") from e
