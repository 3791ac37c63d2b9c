"""GradNorm: learn loss weights that equalise the tasks' gradient norms at the last shared layer.

Paper: "GradNorm: Gradient Normalization for Adaptive Loss Balancing in Deep Multitask
Networks", Zhao Chen, Vijay Badrinarayanan, Chen-Yu Lee, Andrew Rabinovich, ICML 2018,
https://arxiv.org/abs/1711.02257, Algorithm 1. With ``W`` the last shared layer,
``G_W^k = ||w_k g_k[W]||``, its mean ``G_bar``, the inverse training rates
``r_k = (L_k / L_k(0)) / mean_i (L_i / L_i(0))`` and the asymmetry ``alpha``::

    L_grad = sum_k | G_W^k - sg(G_bar r_k^alpha) |,         d = w @ G

then one step on ``w`` along ``dL_grad/dw_k = sign(G_W^k - target_k) ||g_k[W]||`` and a
renormalisation to ``sum_k w_k = K``.

Needs the column slice of the last shared layer, which it takes from :meth:`attach` (the last
group, or the one named by ``layer``); calling it before ``attach`` raises an error saying so.

Guarantees: the weights stay positive and sum to K; a task that trains more slowly than the
others (larger r_k) is pushed towards a larger gradient norm. Differences from the official
code (not released; LibMTL re-implements it): the weights take their own Adam step (learning
rate ``lr``) inside the call, with the gradient of L_grad written out in closed form, rather
than through the model's optimiser.

>>> import torch
>>> gradnorm = GradNorm()
>>> gradnorm.attach([("all", slice(0, 2))])
>>> gradnorm(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.ones(2))
tensor([1., 1.])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .adam_state import adam_tensors, load_adam_tensors
from .base import Combiner, check_inputs, weighted_sum
from .options import non_negative, positive


class GradNorm(Combiner):
    """Gradient normalisation (Chen et al., 2018), with the last shared layer from attach()."""

    name = "gradnorm"
    option_names = ("alpha", "lr", "layer")

    def __init__(self, alpha: float = 1.5, lr: float = 0.025, layer: str = "") -> None:
        self.alpha = non_negative("alpha", alpha)
        self.lr = positive("lr", lr)
        if not isinstance(layer, str):
            raise ValueError(f"layer must be a layer-group name ('' = the last), got {layer!r}")
        self.layer = layer
        self.columns: slice | None = None
        self.task_weights: Tensor | None = None
        self.optimizer: torch.optim.Adam | None = None
        self.initial_losses: Tensor | None = None

    def attach(self, layer_slices: Sequence[tuple[str, slice]]) -> None:
        groups = dict(layer_slices)
        if not groups:
            raise ValueError("GradNorm.attach needs at least one (name, slice) layer group")
        if self.layer and self.layer not in groups:
            raise ValueError(f"layer {self.layer!r} is not among the groups {list(groups)}")
        self.columns = groups[self.layer] if self.layer else list(groups.values())[-1]

    def _ensure_weights(self, K: int) -> None:
        if self.task_weights is None or self.task_weights.shape[0] != K:
            self.task_weights = torch.ones(K, dtype=torch.float64, requires_grad=True)
            self.optimizer = torch.optim.Adam([self.task_weights], lr=self.lr)
            self.initial_losses = None

    def parameters(self) -> list[Tensor]:
        return [] if self.task_weights is None else [self.task_weights]

    def __call__(self, G: Tensor, losses: Tensor) -> Tensor:
        check_inputs(G, losses)
        if self.columns is None:
            raise RuntimeError(
                "GradNorm needs the last shared layer's columns of G: call "
                "attach(layer_slices) first (the trainer does)"
            )
        self._ensure_weights(G.shape[0])
        losses = losses.detach().to("cpu", torch.float64)
        if self.initial_losses is None:
            self.initial_losses = losses.clone()
        weights = self.task_weights.detach().clone()
        d = weighted_sum(weights, G)

        layer_norms = G[:, self.columns].norm(dim=1).to("cpu", torch.float64)  # ||g_k[W]||
        weighted_norms = weights * layer_norms
        relative = losses / self.initial_losses.clamp(min=torch.finfo(torch.float64).tiny)
        rates = relative / relative.mean().clamp(min=torch.finfo(torch.float64).tiny)
        targets = weighted_norms.mean() * rates**self.alpha
        self.task_weights.grad = torch.sign(weighted_norms - targets) * layer_norms
        self.optimizer.step()
        self.task_weights.grad = None
        with torch.no_grad():
            positive_weights = self.task_weights.clamp(min=1e-6)
            self.task_weights.copy_(positive_weights * len(weights) / positive_weights.sum())
        return d

    def state_dict(self) -> dict[str, Tensor]:
        if self.task_weights is None:
            return {}
        state = {"task_weights": self.task_weights.detach().clone(),
                 **adam_tensors(self.optimizer, "adam.")}
        if self.initial_losses is not None:
            state["initial_losses"] = self.initial_losses.clone()
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        if "task_weights" not in state:
            return
        self._ensure_weights(state["task_weights"].shape[0])
        with torch.no_grad():
            self.task_weights.copy_(state["task_weights"])
        load_adam_tensors(self.optimizer, state, "adam.")
        self.initial_losses = state.get("initial_losses")
