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

Differences from the official code (none released; LibMTL's ``UW`` uses 1/2 for every task):
``kinds`` chooses the constant per task ("regression": 1/2, "classification": 1).

>>> import torch
>>> uw = Uncertainty(num_tasks=2, kinds="classification,regression")
>>> uw.loss_weights(torch.ones(2)).detach()
tensor([1.0000, 0.5000])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .base import LossWeighting
from .options import one_of, positive_int

KINDS = ("regression", "classification")


class Uncertainty(LossWeighting):
    """Homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, 2018)."""

    name = "uncertainty"
    option_names = ("num_tasks", "kinds")

    def __init__(self, num_tasks: int = 3, kinds: str | Sequence[str] = "regression") -> None:
        self.num_tasks = positive_int("num_tasks", num_tasks)
        names = kinds.split(",") if isinstance(kinds, str) else list(kinds)
        if len(names) == 1:
            names = names * num_tasks
        if len(names) != num_tasks:
            raise ValueError(f"kinds must name one kind or {num_tasks} kinds, got {kinds!r}")
        self.kinds = ",".join(one_of("kinds", name.strip(), KINDS) for name in names)
        self.constants = torch.tensor([1.0 if k == "classification" else 0.5 for k in names])
        self.log_variances = torch.zeros(num_tasks, requires_grad=True)

    def parameters(self) -> list[Tensor]:
        return [self.log_variances]

    def loss_weights(self, losses: Tensor) -> Tensor:
        if losses.shape[0] != self.num_tasks:
            raise ValueError(
                f"Uncertainty(num_tasks={self.num_tasks}) got {losses.shape[0]} losses; "
                "build it with num_tasks equal to the number of tasks"
            )
        s = self.log_variances.to(losses.device)
        precision = self.constants.to(losses.device) * torch.exp(-s)
        scale = 2 * losses.detach().abs().clamp(min=torch.finfo(losses.dtype).tiny)
        regulariser = (s - s.detach()) / scale  # zero in value; d/ds of its product with L is 1/2
        return (precision + regulariser).to(losses.dtype)

    def state_dict(self) -> dict[str, Tensor]:
        return {"log_variances": self.log_variances.detach().clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        with torch.no_grad():
            self.log_variances.copy_(state["log_variances"])
