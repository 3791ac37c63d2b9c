"""GradNorm: learn loss weights that equalise the tasks' gradient norms at the last shared layer.

Paper: "GradNorm: Gradient Normalization for Adaptive Loss Balancing in Deep Multitask
Networks", Zhao Chen, Vijay Badrinarayanan, Chen-Yu Lee, Andrew Rabinovich, ICML 2018,
https://arxiv.org/abs/1711.02257, Algorithm 1. With ``W`` the last shared layer,
``G_W^k = ||w_k g_k[W]||``, its mean ``G_bar``, the inverse training rates
``r_k = (L_k / L_k(0)) / mean_i (L_i / L_i(0))`` and the asymmetry ``alpha``::

    L_grad = sum_k | G_W^k - sg(G_bar r_k^alpha) |,         d = w @ G

then one step on ``w`` along ``dL_grad/dw_k = sign(G_W^k - target_k) ||g_k[W]||`` and a
renormalisation to ``sum_k w_k = K``.

The last shared layer's columns come from the
:class:`~mtl_tutor.combiners.events.ColumnGroups` event: the group named by ``layer``, else the
last group in which some task's gradient is not zero, i.e. the last shared layer the task losses
reach (BERT's pooler is the last group, but heads that mean-pool the hidden states never read
it, so its columns of G are zero and would leave every weight at 1). Without the event, all
columns form the layer.

Guarantees: the weights stay positive and sum to K; a task that trains more slowly than the
others (larger r_k) is pushed towards a larger gradient norm. It needs every task in every
step (the weights are renormalised over all tasks, and the training rates compared across all
of them), so a run whose steps hold some of the tasks is refused.

Differences from the official code (not released; LibMTL re-implements it): the weights
(``task_weights``, one per task) take their own Adam step (learning rate ``lr``) inside the
call, with the gradient of L_grad written out in closed form, rather than through the model's
optimiser.

>>> import torch
>>> gradnorm = GradNorm()
>>> gradnorm(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.ones(2))
tensor([1., 1.])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .adam_state import TaskValues, by_task, from_tasks
from .base import HALF_DTYPES, Combination, Combiner, relative_change, weighted_sum
from .events import ColumnGroups, TrainingEvent
from .options import non_negative, positive


class GradNorm(Combiner):
    """Gradient normalisation (Chen et al., 2018) at the last shared layer."""

    name = "gradnorm"
    option_names = ("alpha", "lr", "layer")
    events = frozenset({ColumnGroups})
    needs_every_task = ("its weights are renormalised to sum to the number of tasks and its "
                        "training rates compare every task, at every step")

    def __init__(self, alpha: float = 1.5, lr: float = 0.025, layer: str = "") -> None:
        self.alpha = non_negative("alpha", alpha)
        self.lr = positive("lr", lr)
        if not isinstance(layer, str):
            raise ValueError(f"layer must be a layer-group name ('' = the last), got {layer!r}")
        self.layer = layer
        # the columns of G that may be the last shared layer, from the last group back
        self.candidates = [slice(None)]
        self.learnt = TaskValues("GradNorm", 1.0, torch.float64, self.lr)
        self.initial_losses: Tensor | None = None  # L_k(0), the tasks in learnt.tasks order

    @property
    def task_weights(self) -> Tensor | None:
        """w [K], one weight per task (``learnt.tasks``), or None before the first step."""
        return self.learnt.values

    def declare_tasks(self, tasks: Sequence[str]) -> None:
        super().declare_tasks(tasks)
        self.learnt.start(self.tasks)

    def on_event(self, event: TrainingEvent) -> None:
        if not isinstance(event, ColumnGroups):
            return
        groups = dict(event.groups)
        if self.layer and self.layer not in groups:
            raise ValueError(f"layer {self.layer!r} is not among the groups {list(groups)}")
        self.candidates = [groups[self.layer]] if self.layer else list(groups.values())[::-1]

    def last_layer(self, G: Tensor) -> Tensor:
        """G's columns of the last shared layer: the first candidate in which some task's
        gradient is not zero, kept from then on (a layer the losses reach stays reached, so
        later steps neither scan nor wait on the device), the last candidate while none is."""
        for columns in self.candidates[:-1]:
            if G[:, columns].any():
                self.candidates = [columns]
                return G[:, columns]
        return G[:, self.candidates[-1]]

    def direction(self, G: Tensor, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...]
                  ) -> Combination:
        order = self.canonical_order(tasks)
        learnt = self.learnt.start(tuple(tasks[i] for i in order))
        canonical_losses = losses[order]
        if self.initial_losses is None:
            self.initial_losses = canonical_losses.clone()
        weights = torch.empty_like(canonical_losses)
        weights[order] = learnt.detach()  # row order
        d = weighted_sum(weights, G)

        layer = self.last_layer(G)
        norms = (layer.float() if layer.dtype in HALF_DTYPES else layer).norm(dim=1)
        layer_norms = norms.to("cpu", torch.float64)[order]  # ||g_k[W]||, canonical order
        weighted_norms = learnt.detach() * layer_norms
        tiny = torch.finfo(torch.float64).tiny
        relative = canonical_losses / self.initial_losses.clamp(min=tiny)
        rates = relative / relative.mean().clamp(min=tiny)
        targets = weighted_norms.mean() * rates**self.alpha
        self.learnt.step(torch.sign(weighted_norms - targets) * layer_norms)
        with torch.no_grad():
            positive_weights = learnt.clamp(min=1e-6)
            learnt.copy_(positive_weights * len(learnt) / positive_weights.sum())
        return Combination(d, gramian, weights, relative_change([(gramian, weights)]))

    def state_dict(self) -> dict[str, Tensor]:
        state = self.learnt.state_dict("task_weight")
        if self.initial_losses is not None:
            state.update(by_task(self.initial_losses, self.learnt.tasks, "initial_loss"))
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.learnt.load_state_dict(state, "task_weight")
        if any(key.startswith("initial_loss/") for key in state):
            self.initial_losses = from_tasks(state, self.learnt.tasks, "initial_loss")
