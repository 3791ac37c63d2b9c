"""GradVac: pull each pair of task gradients towards the cosine similarity they usually have.

Paper: "Gradient Vaccine: Investigating and Improving Multi-task Optimization in Massively
Multilingual Models", Zirui Wang, Yulia Tsvetkov, Orhan Firat, Yuan Cao, ICLR 2021,
https://arxiv.org/abs/2010.05874, Algorithm 1 (Eq. 3 for the correction, Eq. 4 for the EMA).

For each task i, visit the other tasks j in a random order. With phi the cosine between the
current g_i^GV and the original g_j and phi_hat_ij a target (starting at ``initial_target``,
0 in the paper), when phi < phi_hat_ij add (Eq. 3)::

    g_i^GV += ||g_i^GV|| (phi_hat sqrt(1 - phi^2) - phi sqrt(1 - phi_hat^2))
              / (||g_j|| sqrt(1 - phi_hat^2)) * g_j

which sets the cosine to exactly phi_hat. The target is an EMA of the measured cosine (Eq. 4)::

    phi_hat_ij <- (1 - beta) phi_hat_ij + beta phi

``d = sum_i g_i^GV``. As in PCGrad, each g_i^GV is a row of a K x K coefficient matrix, computed
from the Gramian only (:mod:`~mtl_tutor.combiners.surgery`).

When the target moves (``target_update``):

* ``"always"`` (the paper, Algorithm 1): Eq. 4 on every visit of the pair, so the target tracks
  the pair's usual cosine and GradVac also raises agreeing gradients whose cosine dips below it.
* ``"on-intervention"`` (the public GradVac fork that the CS224N reports "BERT with PALs and
  GradVac" and Kehoe & Ravella ran): Eq. 4 only when phi < phi_hat_ij, i.e. when the pair was
  corrected. From phi_hat = 0 a target then only ever moves below 0, so tasks whose gradients
  usually agree are never touched and GradVac acts on conflicts only, like a softened PCGrad.

Granularity: ``per_group=True`` applies the method separately to each layer group of ``G``'s
columns (the paper's per-layer targets), each with its own Gramian and targets, from the
:class:`~mtl_tutor.combiners.events.ColumnGroups` event; the default treats all shared
parameters as one group, "model".

State belongs to tasks: phi_hat is kept per (group, task i, task j); a step holding some of the
tasks visits and updates only their pairs. The combination says which tasks' gradients were
altered, so a trainer counts interventions per step and per altered per-task gradient (the
reports' unit).

Guarantees: while every target is 0 the correction is exactly PCGrad's projection; when every
pairwise cosine is at least its target, d = sum_k g_k.

Differences from the official code (not released; LibMTL and torchjd re-implement it): the
default ``beta = 0.01`` follows the paper (Section 3.3); LibMTL, torchjd and the reports' fork
use 0.5. The cosine used in the EMA is the one measured before the correction, and the task
order uses ``randperm(K - 1)`` over the other tasks per task i, both as torchjd's ``GradVac``
(over the tasks in the combiner's canonical order). The references add ``eps = 1e-8`` to the
denominators, which dominates for gradient norms near 1e-8 and below; we only skip divisions
by zero, so the method is invariant to the gradients' scale.

>>> import torch
>>> G = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
>>> GradVac()(G, torch.ones(2))
tensor([0.5000, 1.5000])
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor

from .base import Combination, Combiner, gramian_of, in_canonical_order, relative_change
from .events import ColumnGroups, TrainingEvent
from .options import flag, in_unit_interval, one_of, open_interval
from .random_stream import RandomStream
from .surgery import altered_rows, surgery_combination

TARGET_UPDATES = ("always", "on-intervention")
WHOLE_MODEL = "model"


class GradVac(Combiner):
    """Gradient vaccine (Wang et al., 2021), on the Gramian of each layer group."""

    name = "gradvac"
    option_names = ("beta", "target_update", "per_group", "initial_target", "seed")
    events = frozenset({ColumnGroups})

    def __init__(self, beta: float = 0.01, target_update: str = "always",
                 per_group: bool = False, initial_target: float = 0.0, seed: int = 0) -> None:
        self.beta = in_unit_interval("beta", beta)
        self.target_update = one_of("target_update", target_update, TARGET_UPDATES)
        self.per_group = flag("per_group", per_group)
        self.initial_target = open_interval("initial_target", initial_target, -1.0, 1.0)
        self.seed = seed
        self.random = RandomStream(seed)
        self.groups: tuple[tuple[str, slice], ...] = ((WHOLE_MODEL, slice(None)),)
        self.targets: dict[tuple[str, str, str], float] = {}  # (group, i, j) -> phi_hat_ij

    def on_event(self, event: TrainingEvent) -> None:
        if isinstance(event, ColumnGroups) and self.per_group:
            self.groups = event.groups

    def target(self, task_i: str, task_j: str, group: str = WHOLE_MODEL) -> float:
        """phi_hat for correcting ``task_i``'s gradient towards ``task_j``'s in ``group``."""
        return self.targets.get((group, task_i, task_j), self.initial_target)

    def direction(self, G: Tensor, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...]
                  ) -> Combination:
        order = self.canonical_order(tasks)
        if len(self.groups) == 1:
            group = self.groups[0][0]
            coefficients = in_canonical_order(partial(self.corrections, group=group), tasks,
                                              order, gramian)
            return surgery_combination(G, gramian, coefficients)
        d = torch.empty(G.shape[1], dtype=G.dtype, device=G.device)
        altered = torch.zeros(len(tasks), dtype=torch.bool)
        blocks = []
        for group, columns in self.groups:
            block = G[:, columns]
            block_gramian = gramian_of(block)
            coefficients = in_canonical_order(partial(self.corrections, group=group), tasks,
                                              order, block_gramian)
            weights = coefficients.sum(0)
            torch.mv(block.T, weights.to(G.device, G.dtype), out=d[columns])
            altered |= altered_rows(coefficients)
            blocks.append((block_gramian, weights))
        return Combination(d, gramian, None, relative_change(blocks), altered)

    def corrections(self, gramian: Tensor, tasks: tuple[str, ...], group: str = WHOLE_MODEL
                    ) -> Tensor:
        """C [K, K] (row i: g_i^GV as a combination of the rows of G) for the Gramian of one
        group, updating that group's targets."""
        K = gramian.shape[0]
        norms = gramian.diagonal().clamp(min=0).sqrt()
        coefficients = torch.eye(K, dtype=torch.float64)
        for i in range(K):
            others = [j for j in range(K) if j != i]
            for position in torch.randperm(K - 1, generator=self.random.cpu).tolist():
                j = others[position]
                row = coefficients[i]
                norm_i = max(float(row @ gramian @ row), 0.0) ** 0.5
                norms_product = norm_i * float(norms[j])
                phi = float(row @ gramian[:, j]) / norms_product if norms_product > 0 else 0.0
                phi = min(max(phi, -1.0), 1.0)
                target = self.target(tasks[i], tasks[j], group)
                denominator = float(norms[j]) * max(1 - target**2, 0.0) ** 0.5
                intervene = phi < target and denominator > 0
                if intervene:
                    root_phi = (1 - phi**2) ** 0.5
                    root_target = (1 - target**2) ** 0.5
                    scale = norm_i * (target * root_phi - phi * root_target)
                    coefficients[i, j] += scale / denominator
                if intervene or self.target_update == "always":
                    self.targets[group, tasks[i], tasks[j]] = (
                        (1 - self.beta) * target + self.beta * phi)
        return coefficients

    def state_dict(self) -> dict[str, Tensor]:
        state = self.random.state_dict()
        for (group, task_i, task_j), value in self.targets.items():
            state[f"target/{group}/{task_i}/{task_j}"] = torch.tensor(value, dtype=torch.float64)
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.random.load_state_dict(state)
        self.targets = {}
        for key, value in state.items():
            if key.startswith("target/"):  # task names hold no "/", a group name might
                group, task_i, task_j = key.removeprefix("target/").rsplit("/", 2)
                self.targets[group, task_i, task_j] = float(value)
