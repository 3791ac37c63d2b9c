"""FAMO: fast adaptive multitask optimisation, balancing the tasks' loss decrease rates.

Paper: "FAMO: Fast Adaptive Multitask Optimization", Bo Liu, Yihao Feng, Peter Stone, Qiang
Liu, NeurIPS 2023, https://arxiv.org/abs/2306.03792, Algorithm 1. Task logits xi,
``z = softmax(xi)``; the step follows the gradient of ``sum_k z_k log L_k`` normalised::

    w_k = (z_k / L_k) / sum_i (z_i / L_i),        d = w @ G

After the optimiser step, with the same batches' new losses ``L'``, the logits take one Adam
step (learning rate ``lr``, weight decay ``gamma``) along
``J_softmax(xi)^T (log L - log L')``, which raises the weight of tasks whose log-loss fell
least.

Guarantees: one backward pass per step (O(1) in K, unlike gradient-manipulation methods); the
weights are positive and sum to one; the update approximately equalises the rates at which
the task losses decrease.

Differences from the official code: none in the arithmetic (``min_losses`` = 0, 1e-8 added
inside the logs, Adam with weight decay, defaults lr = 0.025, gamma = 0.01 as the official
``FAMO`` class). The logits are created at the first call, when K is known; they are the
combiner's own and are stepped by it in :meth:`on_step_end`, not by the trainer.

>>> import torch
>>> famo = FAMO()
>>> famo.loss_weights(torch.tensor([1.0, 3.0]))
tensor([0.7500, 0.2500])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .adam_state import adam_tensors, load_adam_tensors
from .base import LossWeighting
from .options import non_negative, positive

EPS = 1e-8


class FAMO(LossWeighting):
    """Fast adaptive multitask optimisation (Liu et al., 2023)."""

    name = "famo"
    option_names = ("lr", "gamma")
    wants_losses_after = True

    def __init__(self, lr: float = 0.025, gamma: float = 0.01) -> None:
        self.lr = positive("lr", lr)
        self.gamma = non_negative("gamma", gamma)
        self.logits: Tensor | None = None
        self.optimizer: torch.optim.Adam | None = None
        self.losses_before: Tensor | None = None

    def _ensure_logits(self, K: int) -> None:
        if self.logits is None or self.logits.shape[0] != K:
            self.logits = torch.zeros(K, requires_grad=True)
            self.optimizer = torch.optim.Adam([self.logits], lr=self.lr, weight_decay=self.gamma)

    def parameters(self) -> list[Tensor]:
        return [] if self.logits is None else [self.logits]

    def loss_weights(self, losses: Tensor) -> Tensor:
        self._ensure_logits(losses.shape[0])
        self.losses_before = losses.detach().float().cpu()
        z = torch.softmax(self.logits.detach(), dim=0)
        ratios = z / (self.losses_before + EPS)
        return (ratios / ratios.sum()).to(losses.device, losses.dtype)

    def on_step_end(self, losses_after: Tensor) -> None:
        if self.losses_before is None:
            raise RuntimeError("FAMO.on_step_end needs loss_weights(losses) first")
        after = losses_after.detach().float().cpu()
        delta = torch.log(self.losses_before + EPS) - torch.log(after + EPS)
        z = torch.softmax(self.logits.detach(), dim=0)
        self.logits.grad = z * (delta - z @ delta)  # J_softmax^T delta
        self.optimizer.step()
        self.logits.grad = None

    def state_dict(self) -> dict[str, Tensor]:
        if self.logits is None:
            return {}
        state = {"logits": self.logits.detach().clone(), **adam_tensors(self.optimizer, "adam.")}
        if self.losses_before is not None:
            state["losses_before"] = self.losses_before.clone()
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if "logits" not in state:
            return
        self._ensure_logits(state["logits"].shape[0])
        with torch.no_grad():
            self.logits.copy_(state["logits"])
        load_adam_tensors(self.optimizer, state, "adam.")
        self.losses_before = state["losses_before"].clone() if "losses_before" in state else None
