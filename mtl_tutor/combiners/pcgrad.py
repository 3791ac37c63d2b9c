"""PCGrad: project each task gradient off the normal planes of the gradients it conflicts with.

Paper: "Gradient Surgery for Multi-Task Learning", Tianhe Yu, Saurabh Kumar, Abhishek Gupta,
Sergey Levine, Karol Hausman, Chelsea Finn, NeurIPS 2020, https://arxiv.org/abs/2001.06782,
Algorithm 1.

For each task i, visit the other tasks j in a random order; whenever the current projected
gradient conflicts with the *original* g_j, remove that component::

    g_i^PC <- g_i^PC - min(0, <g_i^PC, g_j>) / ||g_j||^2 * g_j,      d = sum_i g_i^PC

Every g_i^PC is a linear combination of the rows of G, so we track the K x K coefficient
matrix C (row i: g_i^PC = C[i] @ G) using only the Gramian, and return the weights
``C.sum(0)``; the P-long vectors are touched once, in ``weights @ G``
(:mod:`~mtl_tutor.combiners.surgery`). The combination also says which tasks' gradients were
altered (projected at least once) in the step.

Guarantees: with two tasks the result conflicts with neither (<g_k, d> >= 0); when no pair
conflicts, d = sum_k g_k exactly. Differences from the official code: none in the
arithmetic (the official TensorFlow code also sums the projected gradients and shuffles the
task order independently for each i); the order comes from the combiner's own seeded
generator (one ``randperm(K)`` per task, skipping i itself, as torchjd does), drawn over the
tasks in the combiner's canonical order, so a run is reproducible and resumable and a task's
treatment does not depend on its row.

>>> import torch
>>> G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
>>> PCGrad()(G, torch.ones(2))
tensor([0.5000, 1.5000])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Combination, Combiner, in_canonical_order
from .random_stream import RandomStream
from .surgery import surgery_combination


class PCGrad(Combiner):
    """Projecting conflicting gradients (Yu et al., 2020), written on the Gramian."""

    name = "pcgrad"
    option_names = ("seed",)

    def __init__(self, seed: int = 0) -> None:
        self.random = RandomStream(seed)
        self.seed = seed

    def coefficients(self, gramian: Tensor, tasks: tuple[str, ...] | None = None) -> Tensor:
        """C [K, K]: row i holds g_i^PC as a combination of the rows of G."""
        K = gramian.shape[0]
        coefficients = torch.eye(K, dtype=gramian.dtype)
        for i in range(K):
            for j in torch.randperm(K, generator=self.random.cpu).tolist():
                if j == i:
                    continue
                inner = float(gramian[j] @ coefficients[i])  # <g_i^PC, g_j>
                if inner < 0:
                    coefficients[i, j] -= inner / float(gramian[j, j])
        return coefficients

    def direction(self, G: Tensor, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...]
                  ) -> Combination:
        coefficients = in_canonical_order(self.coefficients, tasks, self.canonical_order(tasks),
                                          gramian)
        return surgery_combination(G, gramian, coefficients)

    def state_dict(self) -> dict[str, Tensor]:
        return self.random.state_dict()

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.random.load_state_dict(state)
