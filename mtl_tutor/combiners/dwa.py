"""DWA: weight each task by how slowly its loss fell over the last two epochs.

Paper: "End-to-End Multi-Task Learning with Attention", Shikun Liu, Edward Johns, Andrew J.
Davison, CVPR 2019, https://arxiv.org/abs/1803.10704, Eq. 7 (Dynamic Weight Average)::

    r_k = L_k(t - 1) / L_k(t - 2),     w_k = K exp(r_k / T) / sum_i exp(r_i / T)

with L_k(t) the mean training loss of task k over epoch t, and w = 1 for the first two
epochs. The trainer reports each epoch's mean losses, keyed by task name, with an
:class:`~mtl_tutor.combiners.events.EpochEnd` event.

Guarantees: the weights are positive and sum to K; a task whose loss falls more slowly gets
more weight; T -> infinity gives equal weights. A loss weighting (one backward pass).

Steps that hold some of the tasks (sequential or proportional sampling, a warm-up): each task
keeps the means of the last two epochs in which it trained, and a task with fewer than two
takes the neutral ratio ``r_k = 1``; the softmax runs over all of the combiner's tasks (the
declared ones, else those seen so far), and a step applies its tasks' entries.

Differences from the official code: none in the formula; it is driven by epoch means
reported by the trainer rather than by a per-iteration cost buffer.

>>> import torch
>>> from mtl_tutor.combiners.events import EpochEnd
>>> dwa = DWA()
>>> dwa.on_event(EpochEnd(0, {"a": 1.0, "b": 1.0}))
>>> dwa.on_event(EpochEnd(1, {"a": 0.5, "b": 1.0}))
>>> dwa.loss_weights(torch.ones(2), ["a", "b"])
tensor([0.8756, 1.1244])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import LossWeighting
from .events import EpochEnd, TrainingEvent
from .options import positive


class DWA(LossWeighting):
    """Dynamic weight average (Liu, Johns & Davison, 2019)."""

    name = "dwa"
    option_names = ("temperature",)
    events = frozenset({EpochEnd})

    def __init__(self, temperature: float = 2.0) -> None:
        self.temperature = positive("temperature", temperature)
        self.history: dict[str, list[float]] = {}  # task -> its last two epoch means, oldest first

    def on_event(self, event: TrainingEvent) -> None:
        if isinstance(event, EpochEnd):
            for task, mean in event.mean_losses.items():
                self.history[task] = ([*self.history.get(task, []), float(mean)])[-2:]

    def ratio(self, task: str) -> float:
        """``r_k = L_k(t - 1) / L_k(t - 2)``, or 1 while the task has fewer than two epochs."""
        means = self.history.get(task, [])
        if len(means) < 2:
            return 1.0
        return means[1] / max(means[0], torch.finfo(torch.float64).tiny)

    def weights_from_losses(self, losses: Tensor, tasks: tuple[str, ...]) -> Tensor:
        if not any(len(means) == 2 for means in self.history.values()):
            return torch.ones_like(losses)
        known = self.tasks or tuple(sorted(set(self.history) | set(tasks)))
        ratios = torch.tensor([self.ratio(t) for t in known], dtype=torch.float64)
        weights = len(known) * torch.softmax(ratios / self.temperature, dim=0)
        chosen = weights[[known.index(t) for t in tasks]]
        return chosen.to(losses.device, losses.dtype)

    def state_dict(self) -> dict[str, Tensor]:
        return {f"epoch_losses/{task}": torch.tensor(means, dtype=torch.float64)
                for task, means in self.history.items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.history = {key.removeprefix("epoch_losses/"): value.tolist()
                        for key, value in state.items() if key.startswith("epoch_losses/")}
