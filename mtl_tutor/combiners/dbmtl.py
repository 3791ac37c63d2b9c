"""DB-MTL: balance loss scales with a log transform, gradient scales with their norms.

Paper: "Dual-Balancing for Multi-Task Learning", Baijiong Lin, Weisen Jiang, Feiyang Ye, Yu
Zhang, Pengguang Chen, Ying-Cong Chen, Shu Liu, James T. Kwok, 2023,
https://arxiv.org/abs/2308.12029, Algorithm 1. The task losses become ``log L_k`` (gradient
``g_k / L_k``: loss-scale balancing); an EMA of those gradients,

    m_k <- (1 - beta_t) g_k / L_k + beta_t m_k,     beta_t = beta / t^sigma,

is rescaled to the largest EMA norm (gradient-magnitude balancing)::

    d = sum_k (max_i ||m_i|| / ||m_k||) m_k

Guarantees: invariant to rescaling any task's loss by a positive constant (through the log);
every task contributes a vector of the same norm, max_i ||m_i||.

Memory: the EMA ``m`` is a P-long buffer per task kept between steps (what the method needs:
272 MB for K = 3 and 22.7M float32 parameters); it is updated in place.

State per task: each task's EMA and its step count ``t`` are its own, so a step holding some of
the tasks updates theirs only, with each task's own ``t``; the magnitude balancing rescales the
tasks of the step to the largest EMA norm among all tasks seen.

Differences from the official code (LibMTL's ``DB_MTL``): none in the arithmetic (the EMA starts
at zero, 1e-8 is added to the losses); LibMTL adds 1e-8 to the norms too, we only skip zero
norms, so that d is positively homogeneous in G at every scale; the defaults beta = 0.9 and
sigma = 0.5 are ours, the paper tunes them per data set.

>>> import torch
>>> DBMTL(beta=0.0)(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.ones(2))
tensor([2., 2.])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Combination, Combiner, weighted_sum
from .options import in_unit_interval, non_negative

EPS = 1e-8


class DBMTL(Combiner):
    """Dual-balancing multi-task learning (Lin et al., 2023)."""

    name = "dbmtl"
    option_names = ("beta", "beta_sigma")

    def __init__(self, beta: float = 0.9, beta_sigma: float = 0.5) -> None:
        self.beta = in_unit_interval("beta", beta)
        self.beta_sigma = non_negative("beta_sigma", beta_sigma)
        self.steps: dict[str, int] = {}  # task -> t, its EMA updates so far
        self.momentum: dict[str, Tensor] = {}  # task -> m_k [P]
        self.norms: dict[str, float] = {}  # task -> ||m_k||

    def direction(self, G: Tensor, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...]
                  ) -> Combination:
        for k, task in enumerate(tasks):
            m = self.momentum.get(task)
            if m is None or m.shape != G[k].shape:
                m = torch.zeros_like(G[k])
            m = self.momentum[task] = m.to(G.device, G.dtype)
            self.steps[task] = t = self.steps.get(task, 0) + 1
            decay = self.beta / t**self.beta_sigma
            m.mul_(decay).add_(G[k], alpha=(1 - decay) / (float(losses[k]) + EPS))  # EMA, in place
            norm_dtype = torch.promote_types(m.dtype, torch.float32)  # half norms would overflow
            self.norms[task] = float(torch.linalg.vector_norm(m, dtype=norm_dtype))
        largest = max(self.norms.values())
        scales = torch.tensor([largest / self.norms[t] if self.norms[t] > 0 else 0.0
                               for t in tasks], dtype=torch.float64)
        return Combination(weighted_sum(scales, [self.momentum[t] for t in tasks]), gramian)

    def state_dict(self) -> dict[str, Tensor]:
        state = {f"step/{task}": torch.tensor(t) for task, t in self.steps.items()}
        state.update({f"momentum/{task}": m.clone() for task, m in self.momentum.items()})
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.steps = {k.removeprefix("step/"): int(v) for k, v in state.items()
                      if k.startswith("step/")}
        self.momentum = {k.removeprefix("momentum/"): v.clone() for k, v in state.items()
                         if k.startswith("momentum/")}
        self.norms = {task: float(torch.linalg.vector_norm(
            m, dtype=torch.promote_types(m.dtype, torch.float32))) for task, m in
            self.momentum.items()}
