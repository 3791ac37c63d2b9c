"""PCGrad: project each task gradient off the normal planes of the gradients it conflicts with.

Paper: "Gradient Surgery for Multi-Task Learning", Tianhe Yu, Saurabh Kumar, Abhishek Gupta,
Sergey Levine, Karol Hausman, Chelsea Finn, NeurIPS 2020, https://arxiv.org/abs/2001.06782,
Algorithm 1.

For each task i, visit the other tasks j in a random order; whenever the current projected
gradient conflicts with the *original* g_j, remove that component::

    g_i^PC <- g_i^PC - min(0, <g_i^PC, g_j>) / ||g_j||^2 * g_j,      d = sum_i g_i^PC

Every g_i^PC is a linear combination of the rows of G, so we track the K x K coefficient
matrix C (row i: g_i^PC = C[i] @ G) using only the Gramian, and return the weights
``C.sum(0)``; the P-long vectors are touched once, in ``weights @ G``.

Guarantees: with two tasks the result conflicts with neither (<g_k, d> >= 0); when no pair
conflicts, d = sum_k g_k exactly. Differences from the official code: none in the
arithmetic (the official TensorFlow code also sums the projected gradients and shuffles the
task order independently for each i); the order comes from the combiner's own seeded
generator (one ``randperm(K)`` per task, skipping i itself, as torchjd does), so a run is
reproducible and resumable.

>>> import torch
>>> G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
>>> PCGrad()(G, torch.ones(2))
tensor([0.5000, 1.5000])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import GramianCombiner
from .random_stream import RandomStream


class PCGrad(GramianCombiner):
    """Projecting conflicting gradients (Yu et al., 2020), written on the Gramian."""

    name = "pcgrad"
    option_names = ("seed",)

    def __init__(self, seed: int = 0) -> None:
        self.random = RandomStream(seed)
        self.seed = seed

    def weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        K = gramian.shape[0]
        coefficients = torch.eye(K, dtype=gramian.dtype)  # row i: g_i^PC = coefficients[i] @ G
        for i in range(K):
            for j in torch.randperm(K, generator=self.random.cpu).tolist():
                if j == i:
                    continue
                inner = float(gramian[j] @ coefficients[i])  # <g_i^PC, g_j>
                if inner < 0:
                    coefficients[i, j] -= inner / float(gramian[j, j])
        return coefficients.sum(0)

    def state_dict(self) -> dict[str, Tensor]:
        return self.random.state_dict()

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.random.load_state_dict(state)
