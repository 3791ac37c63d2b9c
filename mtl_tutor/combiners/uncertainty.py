"""Uncertainty weighting: learn each task's homoscedastic noise and weight by its precision.

Paper: "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and
Semantics", Alex Kendall, Yarin Gal, Roberto Cipolla, CVPR 2018,
https://arxiv.org/abs/1705.07115, Eq. 7 (regression) and Eq. 10 (classification). With
learnable log-variances ``s_k = log sigma_k^2``::

    L = sum_k c_k exp(-s_k) L_k + s_k / 2,    c_k = 1/2 (regression), 1 (classification)

so ``w_k = c_k exp(-s_k)``. A loss weighting whose weights carry a graph to ``s``: the trainer
backpropagates ``(w * losses).sum()`` once and steps ``parameters()`` (the s) with the
model's optimiser. The regulariser ``s_k / 2`` rides on the same sum: we return
``w_k = c_k exp(-s_k) + (s_k - sg(s_k)) / (2 sg(L_k))`` (sg = stop-gradient). The added term
is exactly zero in value and in its gradient for the model, and its gradient with respect to
``s_k`` is ``1/2``, the regulariser's.

Guarantees: at the optimum of ``s`` for fixed losses, ``c_k exp(-s_k) L_k = 1/2``: each task
contributes the same weighted loss, whatever its scale.

Each task has its own log-variance, created for each declared task (``get_combiner(...,
tasks=...)``, which the trainer does, so that its optimiser steps them all) or at the task's
first step otherwise. A step holding some of the tasks uses and trains only theirs: Kendall et
al.'s loss summed over the tasks present.

Differences from the official code (none released; LibMTL's ``UW`` uses 1/2 for every task):
``kinds`` chooses the constant per task ("regression": 1/2, "classification": 1): one kind for
every task, one per declared task ("classification,classification,regression"), or a mapping
``{task: kind}``.

>>> import torch
>>> from mtl_tutor.combiners import get_combiner
>>> uw = get_combiner("uncertainty", tasks=["sst", "sts"], kinds="classification,regression")
>>> uw.loss_weights(torch.ones(2)).detach()
tensor([1.0000, 0.5000])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from .base import LossWeighting
from .options import one_of

KINDS = ("regression", "classification")
CONSTANTS = {"regression": 0.5, "classification": 1.0}


class Uncertainty(LossWeighting):
    """Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, 2018)."""

    name = "uncertainty"
    option_names = ("kinds",)

    def __init__(self, kinds: str | Sequence[str] | Mapping[str, str] = "regression") -> None:
        if isinstance(kinds, Mapping):
            self._kinds: str | list[str] | dict[str, str] = {
                str(task): str(one_of(f"kinds[{task!r}]", kind, KINDS))
                for task, kind in kinds.items()}
        else:
            names = kinds.split(",") if isinstance(kinds, str) else list(kinds)
            names = [str(one_of("kinds", name.strip(), KINDS)) for name in names]
            self._kinds = names[0] if len(names) == 1 else names
        self.kinds = kinds
        self.log_variances: dict[str, Tensor] = {}  # task -> s = log sigma^2, a learnable scalar

    def declare_tasks(self, tasks: Sequence[str]) -> None:
        super().declare_tasks(tasks)
        if isinstance(self._kinds, list) and len(self._kinds) != len(self.tasks):
            raise ValueError(f"kinds must name one kind or one per task {list(self.tasks)}, "
                             f"got {self.kinds!r}")
        if isinstance(self._kinds, dict) and set(self._kinds) - set(self.tasks):
            raise ValueError(f"kinds names tasks {sorted(set(self._kinds) - set(self.tasks))} "
                             f"that are not among the tasks {list(self.tasks)}")
        for task in self.tasks:
            self._log_variance(task)

    def kind(self, task: str) -> str:
        """Task ``task``'s kind, "regression" or "classification"."""
        if isinstance(self._kinds, str):
            return self._kinds
        if isinstance(self._kinds, dict):
            if task not in self._kinds:
                raise ValueError(f"kinds {self.kinds!r} gives no kind for task {task!r}")
            return self._kinds[task]
        if self.tasks is None:
            raise ValueError(f"kinds {self.kinds!r} lists one kind per task: declare the tasks "
                             "(get_combiner(..., tasks=[...])) or give kinds as {task: kind}")
        return self._kinds[self.tasks.index(task)]

    def _log_variance(self, task: str) -> Tensor:
        if task not in self.log_variances:
            self.kind(task)  # a task without a kind is refused before it gets a parameter
            self.log_variances[task] = torch.zeros((), requires_grad=True)
        return self.log_variances[task]

    def parameters(self) -> list[Tensor]:
        return [self._log_variance(t) for t in self.tasks or tuple(self.log_variances)]

    def weights_from_losses(self, losses: Tensor, tasks: tuple[str, ...]) -> Tensor:
        s = torch.stack([self._log_variance(t) for t in tasks]).to(losses.device)
        constants = torch.tensor([CONSTANTS[self.kind(t)] for t in tasks], device=losses.device)
        precision = constants * torch.exp(-s)
        scale = 2 * losses.detach().abs().clamp(min=torch.finfo(losses.dtype).tiny)
        regulariser = (s - s.detach()) / scale  # zero in value; d/ds of its product with L is 1/2
        return (precision + regulariser).to(losses.dtype)

    def state_dict(self) -> dict[str, Tensor]:
        return {f"log_variance/{task}": s.detach().clone()
                for task, s in self.log_variances.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        with torch.no_grad():
            for key, value in state.items():
                self._log_variance(key.removeprefix("log_variance/")).copy_(value)
