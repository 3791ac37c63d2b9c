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

Memory: the EMA ``m`` is a K x P buffer kept between steps (what the method needs: 272 MB for
K = 3 and 22.7M float32 parameters); it is updated in place.

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

from .base import Combiner, check_inputs
from .options import in_unit_interval, non_negative

EPS = 1e-8


class DBMTL(Combiner):
    """Dual-balancing multi-task learning (Lin et al., 2023)."""

    name = "dbmtl"
    option_names = ("beta", "beta_sigma")

    def __init__(self, beta: float = 0.9, beta_sigma: float = 0.5) -> None:
        self.beta = in_unit_interval("beta", beta)
        self.beta_sigma = non_negative("beta_sigma", beta_sigma)
        self.step = 0
        self.momentum: Tensor | None = None  # m: [K, P]

    def __call__(self, G: Tensor, losses: Tensor) -> Tensor:
        check_inputs(G, losses)
        if self.momentum is None or self.momentum.shape != G.shape:
            self.momentum = torch.zeros_like(G)
        self.momentum = self.momentum.to(G.device, G.dtype)
        self.step += 1
        decay = self.beta / self.step**self.beta_sigma
        scales = (1 - decay) / (losses.detach().to(G.device, G.dtype) + EPS)
        self.momentum.mul_(decay).addcmul_(G, scales[:, None])  # EMA of g_k / L_k, in place
        norms = self.momentum.norm(dim=1)
        scales = torch.where(norms > 0, norms.max() / norms, torch.zeros_like(norms))
        return scales @ self.momentum

    def state_dict(self) -> dict[str, Tensor]:
        state = {"step": torch.tensor(self.step)}
        if self.momentum is not None:
            state["momentum"] = self.momentum.clone()
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.step = int(state["step"])
        self.momentum = state["momentum"].clone() if "momentum" in state else None
