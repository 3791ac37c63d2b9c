"""RLW: random loss weights, a fresh softmax of Gaussian samples at every step.

Paper: "Reasonable Effectiveness of Random Weighting: A Litmus Test for Multi-Task
Learning", Baijiong Lin, Feiyang Ye, Yu Zhang, Ivor W. Tsang, TMLR 2022,
https://arxiv.org/abs/2111.10603, Algorithm 1 with the normal distribution::

    w = softmax(z),   z ~ N(0, I_K),     d = w @ G

Guarantees: the weights are positive and sum to one; in expectation every task gets the same
weight, and the randomness helps escape poor local minima (the paper's argument). A loss
weighting: the trainer takes one backward pass of ``sum_k w_k L_k``.

Differences from the official code (LibMTL's ``RLW``): none in the arithmetic; the samples come
from the combiner's own seeded generator instead of the global RNG, drawn for the step's tasks
in the combiner's canonical order (so a task's weight does not depend on its row).

>>> import torch
>>> w = RLW(seed=0).loss_weights(torch.ones(3))
>>> bool(torch.isclose(w.sum(), torch.tensor(1.0)))
True
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import LossWeighting
from .random_stream import RandomStream


class RLW(LossWeighting):
    """Random loss weighting (Lin et al., 2021)."""

    name = "rlw"
    option_names = ("seed",)

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.random = RandomStream(seed)

    def weights_from_losses(self, losses: Tensor, tasks: tuple[str, ...]) -> Tensor:
        samples = torch.randn(losses.shape[0], generator=self.random.cpu)
        return torch.softmax(samples, dim=0).to(losses.device, losses.dtype)

    def state_dict(self) -> dict[str, Tensor]:
        return self.random.state_dict()

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.random.load_state_dict(state)
