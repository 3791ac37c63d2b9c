"""An exponential moving average of the weights, evaluated and saved in their place.

Averaging the iterates of stochastic gradient descent (Polyak & Juditsky 1992, "Acceleration of
Stochastic Approximation by Averaging", https://doi.org/10.1137/0330046) smooths out the noise
of the last steps; the exponential form keeps one copy of the weights and forgets old ones:

    theta_bar_t = beta_t * theta_bar_(t-1) + (1 - beta_t) * theta_t,
    beta_t = min(beta, (1 + t) / (10 + t)),

with theta_bar_0 the weights before the first step and t counting the updates from 0. The
warm-up of beta_t (TensorFlow's ``ExponentialMovingAverage(num_updates=t)``) keeps the average
from clinging to the pretrained start: with beta = 0.999 alone, the start would still weigh
0.999^900 = 0.41 after a 900-step run. An average over the last 1 / (1 - beta) steps or so;
beta = 0.995 spans about 200 steps.

The average covers every trained parameter of the model (backbone, heads, PALs); AdamW keeps
updating the raw weights, and the average is what the dev set scores and what
``model.safetensors`` holds (:meth:`WeightAverage.swapped_in`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

WARMUP = 10  # beta_t = (1 + t) / (WARMUP + t) until that reaches beta


class WeightAverage:
    """The exponential moving average, with decay ``decay`` in (0, 1), of ``model``'s trained
    parameters; :meth:`update` after every optimiser step."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"the weight average's decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.average = [p.detach().clone() for p in self.params]
        self.updates = 0

    def beta(self) -> float:
        """beta_t of the next update."""
        return min(self.decay, (1 + self.updates) / (WARMUP + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """theta_bar <- beta_t theta_bar + (1 - beta_t) theta, in one foreach pass."""
        torch._foreach_lerp_(self.average, self.params, 1 - self.beta())
        self.updates += 1

    @contextmanager
    @torch.no_grad()
    def swapped_in(self) -> Iterator[None]:
        """Inside the block the model holds the averaged weights; its own come back after."""
        own = [p.detach().clone() for p in self.params]
        torch._foreach_copy_(self.params, self.average)
        try:
            yield
        finally:
            torch._foreach_copy_(self.params, own)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "average": list(self.average)}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; a ValueError when it is not an average of these weights."""
        average = state["average"]
        if state["decay"] != self.decay or len(average) != len(self.params) or any(
                a.shape != p.shape for a, p in zip(average, self.params)):
            raise ValueError(f"the weight average holds {len(average)} tensors with decay "
                             f"{state['decay']}, not this model's {len(self.params)} with decay "
                             f"{self.decay}")
        torch._foreach_copy_(self.average, average)
        self.updates = int(state["updates"])
