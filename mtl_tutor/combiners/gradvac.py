"""GradVac: pull each pair of task gradients towards the cosine similarity they usually have.

Paper: "Gradient Vaccine: Investigating and Improving Multi-task Optimization in Massively
Multilingual Models", Zirui Wang, Yulia Tsvetkov, Orhan Firat, Yuan Cao, ICLR 2021,
https://arxiv.org/abs/2010.05874, Algorithm 1 (Eq. 3 for the correction, Eq. 4 for the EMA).

For each task i, visit the other tasks j in a random order. With phi the cosine between the
current g_i^GV and the original g_j and phi_hat_ij an EMA target (starting at 0), when
phi < phi_hat_ij add::

    g_i^GV += ||g_i^GV|| (phi_hat sqrt(1 - phi^2) - phi sqrt(1 - phi_hat^2))
              / (||g_j|| sqrt(1 - phi_hat^2)) * g_j

which sets the cosine to exactly phi_hat; then ``phi_hat_ij <- (1 - beta) phi_hat_ij +
beta phi``. ``d = sum_i g_i^GV``. As in PCGrad, each g_i^GV is tracked as a row of a K x K
coefficient matrix, using only the Gramian.

Guarantees: while every target is 0 the correction is exactly PCGrad's projection; when every
pairwise cosine is at least its target, d = sum_k g_k.

Per-layer groups: ``per_group=True`` applies the method separately to each column group that
the trainer passes to :meth:`attach` (the paper applies it per layer), each with its own
Gramian and targets; the default treats all shared parameters as one group ("whole model").

Differences from the official code (not released; LibMTL and torchjd re-implement it): the
default ``beta = 0.01`` follows the paper (Section 3.3); LibMTL and torchjd default to 0.5. The
cosine used in the EMA is the one measured before the correction, and the task order uses
``randperm(K - 1)`` over the other tasks per task i, both as torchjd's ``GradVac``. The
references add ``eps = 1e-8`` to the denominators, which dominates for gradient norms near
1e-8 and below; we only skip divisions by zero, so the method is invariant to the gradients'
scale.

>>> import torch
>>> G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
>>> GradVac()(G, torch.ones(2))
tensor([0.5000, 1.5000])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .base import Combination, Combiner, check_inputs, gramian_of, weighted_sum
from .options import in_unit_interval
from .random_stream import RandomStream


class GradVac(Combiner):
    """Gradient vaccine (Wang et al., 2021), on the Gramian of each layer group."""

    name = "gradvac"
    option_names = ("beta", "per_group", "seed")

    def __init__(self, beta: float = 0.01, per_group: bool = False, seed: int = 0) -> None:
        self.beta = in_unit_interval("beta", beta)
        if not isinstance(per_group, bool):
            raise ValueError(f"per_group must be True or False, got {per_group!r}")
        self.per_group = per_group
        self.seed = seed
        self.random = RandomStream(seed)
        self.groups: list[slice] | None = None
        self.targets: Tensor | None = None  # phi_hat: [groups, K, K]

    def attach(self, layer_slices: Sequence[tuple[str, slice]]) -> None:
        self.groups = [s for _, s in layer_slices]

    def __call__(self, G: Tensor, losses: Tensor) -> Tensor:
        return self.combine(G, losses).direction

    def combine(self, G: Tensor, losses: Tensor) -> Combination:
        check_inputs(G, losses)
        if not self.per_group:
            gramian = gramian_of(G)
            weights = self._group_weights(gramian, 0, 1)
            return Combination(weighted_sum(weights, G), gramian, weights)
        if self.groups is None:
            raise RuntimeError("GradVac(per_group=True) needs attach(layer_slices) first")
        d = torch.empty(G.shape[1], dtype=G.dtype, device=G.device)
        for index, columns in enumerate(self.groups):
            block = G[:, columns]
            weights = self._group_weights(block @ block.T, index, len(self.groups))
            torch.mv(block.T, weights.to(G.device, G.dtype), out=d[columns])
        return Combination(d)

    def _group_weights(self, gramian: Tensor, group: int, num_groups: int) -> Tensor:
        gramian = gramian.to("cpu", torch.float64)
        K = gramian.shape[0]
        if self.targets is None or self.targets.shape != (num_groups, K, K):
            self.targets = torch.zeros(num_groups, K, K, dtype=torch.float64)
        targets = self.targets[group]
        norms = gramian.diagonal().clamp(min=0).sqrt()
        coefficients = torch.eye(K, dtype=torch.float64)  # row i: g_i^GV = coefficients[i] @ G
        for i in range(K):
            others = [j for j in range(K) if j != i]
            for position in torch.randperm(K - 1, generator=self.random.cpu).tolist():
                j = others[position]
                row = coefficients[i]
                norm_i = max(float(row @ gramian @ row), 0.0) ** 0.5
                norms_product = norm_i * float(norms[j])
                phi = float(row @ gramian[:, j]) / norms_product if norms_product > 0 else 0.0
                phi = min(max(phi, -1.0), 1.0)
                target = float(targets[i, j])
                denominator = float(norms[j]) * max(1 - target**2, 0.0) ** 0.5
                if phi < target and denominator > 0:
                    root_phi = (1 - phi**2) ** 0.5
                    root_target = (1 - target**2) ** 0.5
                    scale = norm_i * (target * root_phi - phi * root_target)
                    coefficients[i, j] += scale / denominator
                targets[i, j] = (1 - self.beta) * target + self.beta * phi
        return coefficients.sum(0)

    def state_dict(self) -> dict[str, Tensor]:
        state = self.random.state_dict()
        if self.targets is not None:
            state["targets"] = self.targets.clone()
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.random.load_state_dict(state)
        self.targets = state["targets"].clone() if "targets" in state else None
