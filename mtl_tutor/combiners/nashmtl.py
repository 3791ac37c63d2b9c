"""Nash-MTL: the Nash bargaining solution between the tasks.

Paper: "Multi-Task Learning as a Bargaining Game", Aviv Navon, Aviv Shamsian, Idan Achituve,
Haggai Maron, Kenji Kawaguchi, Gal Chechik, Ethan Fetaya, ICML 2022,
https://arxiv.org/abs/2202.01017, Algorithm 1. The bargaining solution is ``d = w @ G`` with

    (G G^T) w = 1 / w,     w > 0        (each task's utility <g_k, d> equals 1 / w_k)

Guarantees: <g_k, d> = 1 / w_k > 0 for every task (non-conflicting, Pareto-improving), and
the solution is invariant to rescaling any single task's loss (scale-invariance across tasks);
d is permutation-equivariant.

Differences from the official code: the official code approximates the solution with up to 20
convex-concave iterations solved by cvxpy/ECOS (stopping when the residual is below 1e-3),
warm-started from the previous step; we solve the same equation exactly by damped Newton
(:func:`~mtl_tutor.combiners.fairness.fair_weights`), which needs no state. As in the official
code, ``||d||^2 = sum_k w_k <g_k, d> = K`` whatever the gradients' scale (d is invariant to
scaling G), and ``||d||`` is then clipped to ``max_norm`` (default 1; 0 disables), so the
default step has unit norm; the weights can be reused for ``update_weights_every`` steps
(kept per task name, and reused only by a step holding the same tasks).

>>> import torch
>>> G = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
>>> NashMTL(max_norm=0.0)(G, torch.ones(2))
tensor([1., 1.])
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import GramianCombiner
from .fairness import fair_weights
from .options import non_negative, positive_int
from .task_names import row_names


class NashMTL(GramianCombiner):
    """Multi-task learning as a bargaining game (Navon et al., 2022)."""

    name = "nashmtl"
    option_names = ("max_norm", "update_weights_every")

    def __init__(self, max_norm: float = 1.0, update_weights_every: int = 1) -> None:
        self.max_norm = non_negative("max_norm", max_norm)
        self.update_weights_every = positive_int("update_weights_every", update_weights_every)
        self.step = 0
        self.last_weights: dict[str, float] = {}  # task -> its weight when last solved

    def weights(self, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...] | None = None
                ) -> Tensor:
        names = tasks if tasks is not None else row_names(len(gramian), None, None)
        reuse = self.step % self.update_weights_every != 0 and set(self.last_weights) == set(names)
        self.step += 1
        if reuse:
            weights = torch.tensor([self.last_weights[t] for t in names], dtype=gramian.dtype)
        else:
            weights = torch.from_numpy(fair_weights(gramian, alpha=1.0)).to(gramian.dtype)
            self.last_weights = dict(zip(names, weights.tolist()))
        norm = (weights @ gramian @ weights).clamp(min=0).sqrt()
        if self.max_norm > 0 and norm > self.max_norm:
            weights = weights * (self.max_norm / norm)
        return weights

    def state_dict(self) -> dict[str, Tensor]:
        state = {"step": torch.tensor(self.step)}
        for task, weight in self.last_weights.items():
            state[f"last_weight/{task}"] = torch.tensor(weight, dtype=torch.float64)
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.step = int(state["step"])
        self.last_weights = {key.removeprefix("last_weight/"): float(value)
                             for key, value in state.items() if key.startswith("last_weight/")}
