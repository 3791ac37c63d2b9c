"""The combiner contract: per-task gradients ``G`` [K, P], losses [K] and the rows' task names
-> one direction ``d`` [P].

``combine(G, losses, tasks)`` names the rows (``tasks``; without it, see
:mod:`~mtl_tutor.combiners.task_names`), checks the inputs (a NaN or infinite loss or gradient is
a ValueError naming the task, before any solver runs), forms the Gramian ``G G^T`` once in
float64, and hands the method its inputs. There are three kinds of method:

* :class:`GramianCombiner`: ``weights(gramian, losses, tasks)`` -> K weights, ``d = weights @ G``;
* :class:`LossWeighting`: ``weights_from_losses(losses, tasks)`` -> K weights; the trainer then
  takes one backward pass of ``sum_k w_k L_k`` (as cheap as ``sum``);
* any other :class:`Combiner`: ``direction(G, gramian, losses, tasks)`` -> a :class:`Combination`.

Anything more a method needs from training arrives through one hook, ``on_event(event)``, with
the typed events of :mod:`~mtl_tutor.combiners.events`; ``events`` lists those a method reacts to.
State belongs to task names: a stateful method keys it by task (or task pair), so any row order
and any subset of its tasks get each task's own state; a method that needs every task in every
step says why in ``needs_every_task``, and the trainer refuses such a run before its first step.
``parameters()`` are the tensors the trainer's optimiser steps (uncertainty's log-variances);
methods that learn tensors of their own step them themselves and expose them by name.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor

from .events import TrainingEvent
from .task_names import canonical_order, checked_names, row_names

HALF_DTYPES = (torch.float16, torch.bfloat16)
HALF_CHUNK = 1 << 20  # columns converted to float32 at a time for a half-precision Gramian


class Combination(NamedTuple):
    """A combiner's direction with what it computed on the way, for the trainer's statistics.

    gramian: ``G G^T`` [K, K], float64 on the CPU (every combiner forms it once).
    weights: [K] float64, the weight that multiplied each task's gradient (or loss), when the
      method forms one per task; ``direction = weights @ G`` unless the method says otherwise
      (GradAttention's "report" mode applies them on a subset of coordinates only).
    change: ``|d - sum_k g_k| / |sum_k g_k|`` when the method knows it from K x K quantities.
    altered: [K] bool, for gradient surgery (PCGrad, GradVac): whether task k's own gradient was
      changed before the sum. ``altered.any()`` counts a step with an intervention,
      ``altered.sum()`` the altered per-task gradients.
    """

    direction: Tensor
    gramian: Tensor | None = None
    weights: Tensor | None = None
    change: float | None = None
    altered: Tensor | None = None


def gramian_of(G: Tensor) -> Tensor:
    """The Gramian ``G G^T`` [K, K] as float64 on the CPU.

    One dot product per pair of rows: for a short, wide ``G`` (K tasks, millions of
    parameters) the matrix product ``G @ G.T`` runs several times slower on the CPU. Half
    precision rows would overflow at 65504, so their products are accumulated in float32, a
    chunk of columns at a time.
    """
    K = G.shape[0]
    if G.dtype in HALF_DTYPES:
        gramian = torch.zeros(K, K, dtype=torch.float64, device=G.device)
        for start in range(0, G.shape[1], HALF_CHUNK):
            block = G[:, start:start + HALF_CHUNK].float()
            gramian += (block @ block.T).double()
        return gramian.cpu()
    rows, columns = torch.triu_indices(K, K).tolist()
    dots = torch.stack([torch.dot(G[i], G[j]) for i, j in zip(rows, columns)])
    gramian = torch.empty(K, K, dtype=torch.float64)
    gramian[rows, columns] = gramian[columns, rows] = dots.to("cpu", torch.float64)
    return gramian


def weighted_sum(weights: Tensor, G: Tensor | Sequence[Tensor]) -> Tensor:
    """``weights @ G`` [P]: one multiply-add per row of ``G`` (a [K, P] matrix or K rows),
    several times faster on the CPU than the vector-matrix product for a short, wide ``G``."""
    w = weights.tolist()
    if len(w) != len(G):
        raise ValueError(f"need one weight per row of G ({len(G)}), got {len(w)}")
    d = torch.mul(G[0], w[0])
    for k in range(1, len(w)):
        d.add_(G[k], alpha=w[k])
    return d


def relative_change(blocks: Sequence[tuple[Tensor, Tensor]]) -> float:
    """``|d - sum_k g_k| / |sum_k g_k|`` when ``G``'s columns split into blocks b with
    ``d_b = w_b @ G_b``: ``|d - sum_k g_k|^2 = sum_b (w_b - 1)^T (G_b G_b^T) (w_b - 1)``.

    ``blocks`` holds (Gramian of the block [K, K], its weights [K]); a block where ``d`` is zero
    has weights zero.
    """
    change = total = 0.0
    for gramian, weights in blocks:
        ones = torch.ones_like(weights)
        excess = weights - ones
        change += float(excess @ gramian @ excess)
        total += float(ones @ gramian @ ones)
    return math.sqrt(max(change, 0.0) / total) if total > 0 else 0.0


def check_inputs(G: Tensor, losses: Tensor) -> None:
    """Raise a ValueError naming what is wrong with the shapes of ``G`` [K, P] and ``losses``."""
    if G.dim() != 2:
        raise ValueError(f"G must be a [K, P] matrix of task gradients, got shape {tuple(G.shape)}")
    if losses.dim() != 1 or losses.shape[0] != G.shape[0]:
        raise ValueError(
            f"losses must have shape [K] = [{G.shape[0]}] to match G, got {tuple(losses.shape)}"
        )


class NonFiniteInput(ValueError):
    """A task's loss or gradient (``what``) is NaN or infinite; ``task`` names it."""

    def __init__(self, task: str, what: str, message: str):
        self.task, self.what = task, what
        super().__init__(message)

    def __reduce__(self):
        return type(self), (self.task, self.what, str(self))


def check_finite_losses(losses: Tensor, tasks: Sequence[str]) -> None:
    """A :class:`NonFiniteInput` naming the first task whose loss is NaN or infinite."""
    values = losses.detach().tolist()
    for task, value in zip(tasks, values):
        if not math.isfinite(value):
            raise NonFiniteInput(task, "loss", f"the loss of task {task!r} is {value}; a "
                                               "combiner needs finite losses")


def check_finite_gradients(gramian: Tensor, tasks: Sequence[str]) -> None:
    """A :class:`NonFiniteInput` naming the first task whose gradient holds NaN or infinity:
    the Gramian's diagonal ``|g_k|^2`` is non-finite exactly then (or when the squared norm
    overflows)."""
    for task, value in zip(tasks, gramian.diagonal().tolist()):
        if not math.isfinite(value):
            raise NonFiniteInput(task, "gradient", f"the gradient of task {task!r} holds NaN or "
                                                   f"infinite values (its squared norm is "
                                                   f"{value}); a combiner needs finite gradients")


class Combiner(ABC):
    """Map per-task gradients ``G`` [K, P] and task losses [K] to one update direction [P].

    Class attributes a trainer reads:
      needs_gradients: False for a :class:`LossWeighting` (one backward pass of the weighted loss).
      needs_every_task: None when steps holding some of the tasks are handled; otherwise why the
        method needs every task in every step.
      events: the event types of :mod:`~mtl_tutor.combiners.events` that :meth:`on_event` uses.
      option_names: the constructor arguments, echoed by ``repr``.
    """

    name: ClassVar[str] = ""
    option_names: ClassVar[tuple[str, ...]] = ()
    needs_gradients: ClassVar[bool] = True
    needs_every_task: ClassVar[str | None] = None
    events: ClassVar[frozenset[type]] = frozenset()
    tasks: tuple[str, ...] | None = None  # the declared tasks (declare_tasks), in canonical order

    def declare_tasks(self, tasks: Sequence[str]) -> None:
        """Name the tasks this combiner will see (``get_combiner(..., tasks=...)`` does it): rows
        without names are then these tasks, and they fix the canonical order."""
        names = checked_names(tasks)
        if not names:
            raise ValueError("tasks must name at least one task")
        self.tasks = names

    def canonical_order(self, tasks: tuple[str, ...]) -> list[int]:
        """The row indices of ``tasks`` in this combiner's canonical order."""
        return canonical_order(tasks, self.tasks)

    def combine(self, G: Tensor, losses: Tensor, tasks: Sequence[str] | None = None
                ) -> Combination:
        """The direction for ``G`` [K, P] and ``losses`` [K] with what was computed on the way.

        ``tasks`` names the rows. Raises a ValueError naming the task when a loss or a
        gradient is not finite, and naming the input when a shape is wrong.
        """
        check_inputs(G, losses)
        names = row_names(G.shape[0], tasks, self.tasks)
        check_finite_losses(losses, names)
        gramian = gramian_of(G)
        check_finite_gradients(gramian, names)
        return self.direction(G, gramian, losses.detach().to("cpu", torch.float64), names)

    def __call__(self, G: Tensor, losses: Tensor, tasks: Sequence[str] | None = None) -> Tensor:
        """The update direction ``d`` [P]; see :meth:`combine`."""
        return self.combine(G, losses, tasks).direction

    @abstractmethod
    def direction(self, G: Tensor, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...]
                  ) -> Combination:
        """The method itself, on checked inputs: ``gramian`` = ``G G^T`` and ``losses`` as
        float64 CPU tensors, ``tasks`` the names of ``G``'s rows in row order."""

    def parameters(self) -> list[Tensor]:
        """The tensors the trainer's optimiser steps with the model (empty for most methods)."""
        return []

    def on_event(self, event: TrainingEvent) -> None:  # noqa: B027 (the optional hook)
        """React to a training event listed in ``events``; the default ignores every event."""

    def state_dict(self) -> dict[str, Tensor]:
        """Tensors that restore the combiner's state exactly (RNG state included), keyed by
        task name where they belong to a task."""
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:  # noqa: B027 (stateless default)
        """Inverse of :meth:`state_dict`."""

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.option_names)
        return f"{type(self).__name__}({options})"


def in_canonical_order(method, tasks: tuple[str, ...], order: list[int], *inputs: Tensor
                       ) -> Tensor:
    """``method(*inputs, names)`` evaluated with the tasks in canonical ``order`` (each input
    [K] or [K, K] permuted alike), its [K] or [K, K] result returned in row order (autograd-safe).
    """
    if order == list(range(len(order))):
        return method(*inputs, tasks)
    index = torch.tensor(order)
    permuted = [permute(x, index) for x in inputs]
    result = method(*permuted, tuple(tasks[i] for i in order))
    return permute(result, torch.argsort(index))


def permute(x: Tensor, index: Tensor) -> Tensor:
    """The entries [K] (or rows and columns [K, K]) of ``x`` in the order ``index``."""
    index = index.to(x.device)
    return x[index][:, index] if x.dim() == 2 else x[index]


class GramianCombiner(Combiner):
    """A combiner whose direction is ``weights(G G^T, losses, tasks) @ G``.

    ``weights`` receives the Gramian and the losses as float64 CPU tensors and the tasks in the
    combiner's canonical order: the K x K work is tiny, and double precision keeps the solvers
    exact from 1e-15 to 1e15 scale. It also accepts any floating Gramian (widgets call it).
    """

    @abstractmethod
    def weights(self, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...] | None = None
                ) -> Tensor:
        """Return the K weights from the Gramian [K, K] and the losses [K]."""

    def direction(self, G: Tensor, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...]
                  ) -> Combination:
        weights = in_canonical_order(self.weights, tasks, self.canonical_order(tasks),
                                     gramian, losses)
        return Combination(weighted_sum(weights, G), gramian, weights,
                           relative_change([(gramian, weights)]))


class LossWeighting(Combiner):
    """A combiner whose weights depend on the losses alone: ``d = loss_weights(losses) @ G``."""

    needs_gradients = False

    @abstractmethod
    def weights_from_losses(self, losses: Tensor, tasks: tuple[str, ...]) -> Tensor:
        """The K weights for ``losses`` [K] of ``tasks`` (in the canonical order)."""

    def loss_weights(self, losses: Tensor, tasks: Sequence[str] | None = None) -> Tensor:
        """The weights [K] of the tasks ``tasks`` (default: see ``row_names``); the trainer
        backpropagates ``(weights * losses).sum()`` once.

        For learnable weightings (uncertainty) the returned tensor may carry a graph to
        :meth:`parameters`, which the trainer then steps. Its value is always the weights that
        multiply the task gradients, so :meth:`combine` returns ``weights.detach() @ G``.
        """
        if losses.dim() != 1:
            raise ValueError(f"losses must have shape [K], got {tuple(losses.shape)}")
        names = row_names(losses.shape[0], tasks, self.tasks)
        check_finite_losses(losses, names)
        return in_canonical_order(self.weights_from_losses, names, self.canonical_order(names),
                                  losses)

    def direction(self, G: Tensor, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...]
                  ) -> Combination:
        weights = self.loss_weights(losses, tasks).detach().to("cpu", torch.float64)
        return Combination(weighted_sum(weights, G), gramian, weights,
                           relative_change([(gramian, weights)]))


def generator_state(generator: torch.Generator) -> dict[str, Tensor]:
    """The state of a combiner's own random generator, for checkpoints."""
    return {"rng": generator.get_state()}
