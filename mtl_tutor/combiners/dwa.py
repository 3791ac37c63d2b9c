"""DWA: weight each task by how slowly its loss fell over the last two epochs.

Paper: "End-to-End Multi-Task Learning with Attention", Shikun Liu, Edward Johns, Andrew J.
Davison, CVPR 2019, https://arxiv.org/abs/1803.10704, Eq. 7 (Dynamic Weight Average)::

    r_k = L_k(t - 1) / L_k(t - 2),     w_k = K exp(r_k / T) / sum_i exp(r_i / T)

with L_k(t) the mean training loss of task k over epoch t, and w = 1 for the first two
epochs. The trainer reports each epoch's mean losses through :meth:`on_epoch_end`.

Guarantees: the weights are positive and sum to K; a task whose loss falls more slowly gets
more weight; T -> infinity gives equal weights. A loss weighting (one backward pass).

Differences from the official code: none in the formula; it is driven by epoch means
reported by the trainer rather than by a per-iteration cost buffer.

>>> import torch
>>> dwa = DWA()
>>> dwa.on_epoch_end(torch.tensor([1.0, 1.0]))
>>> dwa.on_epoch_end(torch.tensor([0.5, 1.0]))
>>> dwa.loss_weights(torch.ones(2))
tensor([0.8756, 1.1244])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import LossWeighting
from .options import positive


class DWA(LossWeighting):
    """Dynamic weight average (Liu, Johns & Davison, 2019)."""

    name = "dwa"
    option_names = ("temperature",)

    def __init__(self, temperature: float = 2.0) -> None:
        self.temperature = positive("temperature", temperature)
        self.history: list[Tensor] = []  # the last two epochs' mean losses, oldest first

    def on_epoch_end(self, mean_losses: Tensor) -> None:
        self.history = (self.history + [mean_losses.detach().double().cpu()])[-2:]

    def loss_weights(self, losses: Tensor) -> Tensor:
        K = losses.shape[0]
        if len(self.history) < 2 or self.history[0].shape[0] != K:
            return torch.ones_like(losses)
        older, newer = self.history
        ratios = newer / older.clamp(min=torch.finfo(torch.float64).tiny)
        weights = K * torch.softmax(ratios / self.temperature, dim=0)
        return weights.to(losses.device, losses.dtype)

    def state_dict(self) -> dict[str, Tensor]:
        return {f"epoch_losses_{i}": losses.clone() for i, losses in enumerate(self.history)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.history = [state[f"epoch_losses_{i}"].clone() for i in range(len(state))]
