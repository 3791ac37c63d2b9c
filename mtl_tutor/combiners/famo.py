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

It needs every task in every step: the logits are a softmax over all tasks, and each update
compares every task's loss decrease, so a run whose steps hold some of the tasks is refused.

Differences from the official code: none in the arithmetic (``min_losses`` = 0, 1e-8 added
inside the logs, Adam with weight decay, defaults lr = 0.025, gamma = 0.01 as the official
``FAMO`` class). The logits (one per task, ``logits``) are created for the declared tasks or at
the first call; they are the combiner's own and are stepped by it when the trainer sends the
:class:`~mtl_tutor.combiners.events.LossesAfterStep` event, not by the trainer's optimiser.

>>> import torch
>>> famo = FAMO()
>>> famo.loss_weights(torch.tensor([1.0, 3.0]))
tensor([0.7500, 0.2500])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .adam_state import TaskValues, by_task, from_tasks
from .base import LossWeighting
from .events import LossesAfterStep, TrainingEvent
from .options import non_negative, positive

EPS = 1e-8


class FAMO(LossWeighting):
    """Fast adaptive multitask optimisation (Liu et al., 2023)."""

    name = "famo"
    option_names = ("lr", "gamma")
    events = frozenset({LossesAfterStep})
    needs_every_task = ("its weights are a softmax over every task's logit, updated from every "
                        "task's loss decrease in the step")

    def __init__(self, lr: float = 0.025, gamma: float = 0.01) -> None:
        self.lr = positive("lr", lr)
        self.gamma = non_negative("gamma", gamma)
        self.task_logits = TaskValues("FAMO", 0.0, torch.float32, self.lr, self.gamma)
        self.losses_before: Tensor | None = None  # [K], the tasks in task_logits.tasks order

    @property
    def logits(self) -> Tensor | None:
        """xi [K], one logit per task (``task_logits.tasks``), or None before the first step."""
        return self.task_logits.values

    def declare_tasks(self, tasks: Sequence[str]) -> None:
        super().declare_tasks(tasks)
        self.task_logits.start(self.tasks)

    def weights_from_losses(self, losses: Tensor, tasks: tuple[str, ...]) -> Tensor:
        logits = self.task_logits.start(tasks)
        self.losses_before = losses.detach().float().cpu()
        z = torch.softmax(logits.detach(), dim=0)
        ratios = z / (self.losses_before + EPS)
        return (ratios / ratios.sum()).to(losses.device, losses.dtype)

    def on_event(self, event: TrainingEvent) -> None:
        if not isinstance(event, LossesAfterStep):
            return
        if self.losses_before is None:
            raise RuntimeError("FAMO got the losses after a step before any loss_weights call")
        tasks = self.task_logits.tasks
        missing = [t for t in tasks if t not in event.losses]
        if missing:
            raise ValueError(f"FAMO needs the losses after the step of every task; "
                             f"missing {missing}")
        after = torch.tensor([event.losses[t] for t in tasks], dtype=torch.float32)
        delta = torch.log(self.losses_before + EPS) - torch.log(after + EPS)
        z = torch.softmax(self.logits.detach(), dim=0)
        self.task_logits.step(z * (delta - z @ delta))  # J_softmax^T delta

    def state_dict(self) -> dict[str, Tensor]:
        state = self.task_logits.state_dict("logit")
        if self.losses_before is not None:
            state.update(by_task(self.losses_before, self.task_logits.tasks, "loss_before"))
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.task_logits.load_state_dict(state, "logit")
        if any(key.startswith("loss_before/") for key in state):
            self.losses_before = from_tasks(state, self.task_logits.tasks, "loss_before")
