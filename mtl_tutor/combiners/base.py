"""The combiner contract: per-task gradients ``G`` [K, P] and losses [K] -> one direction ``d`` [P].

Every method that resolves conflicts between tasks is a :class:`Combiner`. Most are a pure map
from the K x K Gramian ``G G^T`` to K weights; :class:`GramianCombiner` then forms
``d = weights @ G`` in one product, so no method loops over parameters. Methods whose weights
depend on the losses alone (:class:`LossWeighting`) never need ``G``: the trainer takes one
backward pass of the weighted loss ``sum_k w_k L_k`` instead, exactly as cheap as ``sum``.

A combiner never touches the model's ``.grad`` or optimiser. Learnable state (GradAttention,
uncertainty weighting, GradNorm, FAMO) lives in ``parameters()`` and ``state_dict()`` so that
checkpoints carry it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor


class Combination(NamedTuple):
    """A combiner's direction with what it computed on the way, for the trainer's diagnostics.

    ``weights`` is set when ``direction = weights @ G`` for one weight vector [K], and
    ``gramian`` (``G G^T``, float64 on the CPU) when the method formed it; with both, the
    conflict statistics of a step need no further pass over ``G``.
    """

    direction: Tensor
    gramian: Tensor | None = None
    weights: Tensor | None = None


def gramian_of(G: Tensor) -> Tensor:
    """The Gramian ``G G^T`` [K, K] as float64 on the CPU.

    One dot product per pair of rows: for a short, wide ``G`` (K tasks, millions of
    parameters) the matrix product ``G @ G.T`` runs several times slower on the CPU and, in
    float32, less exactly.
    """
    K = G.shape[0]
    rows, columns = torch.triu_indices(K, K).tolist()
    dots = torch.stack([torch.dot(G[i], G[j]) for i, j in zip(rows, columns)])
    gramian = torch.empty(K, K, dtype=torch.float64)
    gramian[rows, columns] = gramian[columns, rows] = dots.to("cpu", torch.float64)
    return gramian


def weighted_sum(weights: Tensor, G: Tensor) -> Tensor:
    """``weights @ G`` [P]: one multiply-add per row of ``G``, several times faster on the CPU
    than the vector-matrix product for a short, wide ``G``."""
    w = weights.tolist()
    if len(w) != G.shape[0]:
        raise ValueError(f"need one weight per row of G ({G.shape[0]}), got {len(w)}")
    d = torch.mul(G[0], w[0])
    for k in range(1, len(w)):
        d.add_(G[k], alpha=w[k])
    return d


class Combiner(ABC):
    """Map per-task gradients ``G`` [K, P] and task losses [K] to one update direction [P].

    Class attributes a trainer reads:
      needs_gradients: False when the direction is ``w @ G`` with ``w`` a function of the losses
        only; the trainer then calls :meth:`loss_weights` and takes a single backward pass.
      wants_losses_after: True when the trainer must call :meth:`on_step_end` (FAMO).
      option_names: the constructor arguments, echoed by ``repr``.
    """

    name: str = ""
    needs_gradients: bool = True
    option_names: tuple[str, ...] = ()

    @abstractmethod
    def __call__(self, G: Tensor, losses: Tensor) -> Tensor:
        """Return the update direction ``d`` [P] for gradients ``G`` [K, P] and ``losses`` [K]."""

    def combine(self, G: Tensor, losses: Tensor) -> Combination:
        """The direction ``self(G, losses)`` together with the Gramian and the weights where
        the method forms them (the trainer reuses them for its statistics). The default
        returns the direction alone."""
        return Combination(self(G, losses))

    def parameters(self) -> list[Tensor]:
        """Learnable tensors of the combiner itself (empty for most methods).

        The trainer steps them with the model's optimiser only for a :class:`LossWeighting`
        whose ``loss_weights`` carry a graph to them (uncertainty weighting). Every other
        combiner with parameters (GradAttention, GradNorm) updates them itself inside
        ``__call__`` or ``on_step_end``; for those, ``parameters()`` is for inspection.
        """
        return []

    def attach(self, layer_slices: Sequence[tuple[str, slice]]) -> None:  # noqa: B027 (optional hook)
        """Receive the layout of ``G``'s columns as (layer-group name, column slice) pairs.

        Methods that work per layer group (GradVac's layer-wise targets, GradNorm's last shared
        layer) need it; the default ignores it.
        """

    def on_epoch_end(self, mean_losses: Tensor) -> None:  # noqa: B027 (optional hook)
        """Called by the trainer once per epoch with each task's mean training loss (DWA)."""

    def on_step_end(self, losses_after: Tensor) -> None:  # noqa: B027 (optional hook)
        """Called by the trainer after the optimiser step with the same batches' new losses
        when the method asks for them (FAMO); ``wants_losses_after`` says whether it does."""

    wants_losses_after: bool = False

    def state_dict(self) -> dict[str, Tensor]:
        """Tensors that restore the combiner's state exactly (RNG state included)."""
        return {}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:  # noqa: B027 (optional hook)
        """Inverse of :meth:`state_dict`."""

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.option_names)
        return f"{type(self).__name__}({options})"


class GramianCombiner(Combiner):
    """A combiner whose direction is ``weights(G G^T, losses) @ G``.

    ``__call__`` hands ``weights`` the Gramian and the losses as float64 CPU tensors: the K x K
    work is tiny, and double precision keeps the solvers exact from 1e-15 to 1e15 scale.
    ``weights`` itself accepts any floating Gramian (widgets call it directly).
    """

    @abstractmethod
    def weights(self, gramian: Tensor, losses: Tensor) -> Tensor:
        """Return the K weights from the Gramian [K, K] and the losses [K]."""

    def __call__(self, G: Tensor, losses: Tensor) -> Tensor:
        return self.combine(G, losses).direction

    def combine(self, G: Tensor, losses: Tensor) -> Combination:
        check_inputs(G, losses)
        gramian = gramian_of(G)
        weights = self.weights(gramian, losses.detach().to("cpu", torch.float64))
        return Combination(weighted_sum(weights, G), gramian, weights)


class LossWeighting(Combiner):
    """A combiner whose weights depend on the losses alone: ``d = loss_weights(losses) @ G``."""

    needs_gradients = False

    @abstractmethod
    def loss_weights(self, losses: Tensor) -> Tensor:
        """Return K weights; the trainer backpropagates ``(weights * losses).sum()`` once.

        For learnable weightings (uncertainty) the returned tensor may carry a graph to the
        combiner's parameters; the trainer then also steps them. Its value is always the weights
        that multiply the task gradients, so ``__call__`` returns ``weights.detach() @ G``.
        """

    def __call__(self, G: Tensor, losses: Tensor) -> Tensor:
        return self.combine(G, losses).direction

    def combine(self, G: Tensor, losses: Tensor) -> Combination:
        check_inputs(G, losses)
        weights = self.loss_weights(losses).detach().to("cpu", torch.float64)
        return Combination(weighted_sum(weights, G), weights=weights)


def check_inputs(G: Tensor, losses: Tensor) -> None:
    """Raise a ValueError naming what is wrong with ``G`` [K, P] and ``losses`` [K]."""
    if G.dim() != 2:
        raise ValueError(f"G must be a [K, P] matrix of task gradients, got shape {tuple(G.shape)}")
    if losses.dim() != 1 or losses.shape[0] != G.shape[0]:
        raise ValueError(
            f"losses must have shape [K] = [{G.shape[0]}] to match G, got {tuple(losses.shape)}"
        )


def generator_state(generator: torch.Generator) -> dict[str, Tensor]:
    """The state of a combiner's own random generator, for checkpoints."""
    return {"rng": generator.get_state()}
