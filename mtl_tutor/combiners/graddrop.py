"""GradDrop: per coordinate, keep only the gradients of one sign, chosen by sign purity.

Paper: "Just Pick a Sign: Optimizing Deep Multitask Models with Gradient Sign Dropout",
Zhao Chen, Jiquan Ngiam, Yanping Huang, Thang Luong, Henrik Kretzschmar, Yuning Chai,
Dragomir Anguelov, NeurIPS 2020, https://arxiv.org/abs/2010.06808, Algorithm 1 (lines 10-15).

For every coordinate p, the positive sign purity is
``P = 1/2 (1 + sum_k g_kp / sum_k |g_kp|)``; draw ``U ~ Uniform(0, 1)``; keep the positive
entries of the column where ``P > U`` and the negative ones where ``P < U``::

    d_p = sum_k max(g_kp, 0)   if P > U,     sum_k min(g_kp, 0)   if P < U

With ``pos = sum_k max(g_k, 0)`` and ``neg = sum_k min(g_k, 0)``, ``P = pos / (pos - neg)``;
we compare ``U (pos - neg)`` with ``pos`` so that all-zero columns give 0 without dividing.

Not a Gramian method: it works coordinate by coordinate, vectorised over P; the inherent cost
is a few P-long buffers (pos, neg, U, the mask) and one uniform draw per coordinate.

Guarantees: each coordinate of d agrees in sign with at least one task and never mixes signs;
d_p = sum_k g_kp wherever all tasks agree in sign. Differences from the official code: we
apply it to the gradients of the shared parameters (the paper inserts it at a chosen layer of
activations); no leak (the paper's default) and the identity as the monotone function f.
U is drawn from the combiner's own generator on the gradients' device; it does not depend on
the order of the tasks.

>>> import torch
>>> G = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
>>> GradDrop()(G, torch.ones(2))
tensor([4., 6.])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Combination, Combiner
from .random_stream import RandomStream


class GradDrop(Combiner):
    """Gradient sign dropout (Chen et al., 2020)."""

    name = "graddrop"
    option_names = ("seed",)

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.random = RandomStream(seed)
        self._buffers: Tensor | None = None  # [4, P] scratch, kept between calls

    def _scratch(self, G: Tensor) -> Tensor:
        """Four P-long buffers, reused from call to call: allocating ~100 MB afresh every step
        costs more on the CPU (page faults) than the arithmetic does."""
        b = self._buffers
        if b is None or b.shape[1] != G.shape[1] or b.dtype != G.dtype or b.device != G.device:
            self._buffers = b = torch.empty(4, G.shape[1], dtype=G.dtype, device=G.device)
        return b

    def direction(self, G: Tensor, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...]
                  ) -> Combination:
        positive, negative, threshold, scratch = self._scratch(G)
        torch.clamp(G[0], min=0, out=positive)
        negative.copy_(G[0])
        for row in G[1:]:  # a loop over the K tasks keeps every temporary P-long, never K x P
            positive.add_(torch.clamp(row, min=0, out=scratch))
            negative.add_(row)
        negative.sub_(positive)  # sum_k g_k - sum_k max(g_k, 0) = sum_k min(g_k, 0)
        threshold.uniform_(generator=self.random.on(G.device))
        threshold.mul_(torch.sub(positive, negative, out=scratch))  # U (pos - neg) < pos <=> P > U
        d = torch.where(threshold < positive, positive, negative)
        d.masked_fill_(threshold == positive, 0)  # P == U, and all-zero columns
        return Combination(d, gramian)

    def state_dict(self) -> dict[str, Tensor]:
        return self.random.state_dict()

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.random.load_state_dict(state)
