"""Per-task gradients of the shared parameters in one preallocated flat buffer, and what they say.

``TaskGradients`` owns ``G`` [K, P]: row k holds task k's gradient of all P shared parameters.
Before task k's backward pass each shared parameter's ``.grad`` is pointed at its slice of row k,
so autograd accumulates straight into ``G`` (no copies, no per-step concatenation). After the
combiner has produced a direction ``d`` [P], :meth:`TaskGradients.write_direction` points every
``.grad`` at its slice of ``d``, and the optimiser steps as usual.

The conflict statistics (pairwise cosines, per layer group) are computed from K x K Gramians:
``cos(g_i, g_j) = (G G^T)_ij / sqrt((G G^T)_ii (G G^T)_jj)``. Since a step's log keeps the norms
and cosines, it keeps its Gramian (:func:`logged_gramian`), and :func:`gradients_with_gramian`
turns that back into K rows that any method reading only the Gramian treats exactly as the
step's real gradients (how notebook 04 replays a run through GradVac's two target rules).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .combiners.base import Combination, gramian_of
from .run_log import StepRecord


def layer_group(name: str) -> str:
    """The layer group of a BERT parameter name: "embeddings", "layer.3", "pooler", ..."""
    match = re.search(r"encoder\.layer\.(\d+)\.", name)
    if match:
        return f"layer.{match.group(1)}"
    return name.split(".")[0]


class TaskGradients:
    """Flat gradient storage for the shared parameters of a multitask model.

    params: the shared parameters, in a fixed order. names: their names (for layer groups).
    max_tasks: rows of ``G`` (the most tasks a step can hold).
    """

    def __init__(self, params: Sequence[nn.Parameter], max_tasks: int,
                 names: Sequence[str] | None = None):
        if max_tasks < 1:
            raise ValueError(f"max_tasks must be >= 1, got {max_tasks}")
        self.params = list(params)
        if not self.params:
            raise ValueError("params is empty: there are no shared parameters to take gradients of")
        p0 = self.params[0]
        self.sizes = [p.numel() for p in self.params]
        self.num_params = sum(self.sizes)
        self.G = torch.zeros(max_tasks, self.num_params, dtype=p0.dtype, device=p0.device)
        self.direction = torch.zeros(self.num_params, dtype=p0.dtype, device=p0.device)
        self._row_views = [self._views(self.G[k]) for k in range(max_tasks)]
        self._direction_views = self._views(self.direction)
        if names is None:
            names = [f"p{i}" for i in range(len(self.params))]
        self.names = list(names)
        self.layer_slices = self._layer_slices()

    def _views(self, flat: Tensor) -> list[Tensor]:
        return [chunk.view_as(p) for chunk, p in zip(flat.split(self.sizes), self.params)]

    def _layer_slices(self) -> list[tuple[str, slice]]:
        """Contiguous column ranges of ``G`` per layer group, in parameter order."""
        slices: list[tuple[str, slice]] = []
        start = 0
        for name, size in zip(self.names, self.sizes):
            group = layer_group(name)
            if slices and slices[-1][0] == group:
                slices[-1] = (group, slice(slices[-1][1].start, start + size))
            else:
                slices.append((group, slice(start, start + size)))
            start += size
        return slices

    def capture(self, k: int, zero: bool = True) -> None:
        """Route the shared parameters' next backward pass into row k, zeroed first unless
        ``zero`` is False (later micro-batches of an accumulated step add to the row)."""
        if zero:
            self.G[k].zero_()
        for p, view in zip(self.params, self._row_views[k]):
            p.grad = view

    def capture_direction(self) -> None:
        """Zero ``d`` and route the next backward pass into it (the one-backward fast path)."""
        self.direction.zero_()
        for p, view in zip(self.params, self._direction_views):
            p.grad = view

    def write_direction(self, d: Tensor) -> None:
        """Make ``d`` [P] the shared parameters' gradient."""
        if d.data_ptr() != self.direction.data_ptr():
            self.direction.copy_(d)
        for p, view in zip(self.params, self._direction_views):
            p.grad = view


def cosine_matrix(gramian: Tensor, eps: float = 1e-30) -> Tensor:
    """Pairwise cosines from a Gramian [K, K]; rows of zero norm get cosine 0."""
    norms = gramian.diagonal().clamp_min(0).sqrt()
    return gramian / (norms[:, None] * norms[None, :]).clamp_min(eps)


def pair_names(tasks: Sequence[str]) -> list[tuple[int, int, str]]:
    return [(i, j, f"{tasks[i]}/{tasks[j]}") for i in range(len(tasks))
            for j in range(i + 1, len(tasks))]


def conflict_statistics(G: Tensor, d: Tensor, tasks: Sequence[str],
                        layer_slices: Sequence[tuple[str, slice]] = (),
                        combination: Combination | None = None) -> dict:
    """Diagnostics of one step: norms, pairwise cosines, conflict, how far ``d`` is from the sum,
    and the combiner's task weights and altered gradients where it forms them.

    Returns plain Python numbers: {"grad_norms": {task: |g|}, "cosines": {"a/b": cos},
    "conflict": any cosine < 0, "changed": |d - sum_k g_k| / |sum_k g_k|,
    "weights": {task: weight} (when the combination carries weights),
    "altered": {task: whether its gradient was altered} (gradient surgery),
    "layer_cosines": {group: {"a/b": cos}} when layer_slices are given}.

    ``combination``, the combiner's :class:`~mtl_tutor.combiners.base.Combination` for ``d``,
    spares the passes over ``G`` where it carries the Gramian and the change.
    """
    have = combination if combination is not None else Combination(d)
    gramian = have.gramian if have.gramian is not None else gramian_of(G)
    cos = cosine_matrix(gramian)
    pairs = pair_names(tasks)
    if have.change is not None:
        changed = have.change
    else:
        total = G.sum(0)
        total_norm, change_norm = total.norm(), (d - total).norm()
        changed = (change_norm / total_norm).item() if total_norm > 0 else 0.0
    norms = gramian.diagonal().clamp_min(0).sqrt().tolist()
    stats = {
        "grad_norms": dict(zip(tasks, norms)),
        "cosines": {name: cos[i, j].item() for i, j, name in pairs},
        "conflict": bool(any(cos[i, j] < 0 for i, j, _ in pairs)),
        "changed": changed,
    }
    if have.weights is not None:
        stats["weights"] = dict(zip(tasks, have.weights.tolist()))
    if have.altered is not None:
        stats["altered"] = dict(zip(tasks, have.altered.tolist()))
    if layer_slices:
        layer_cos = {}
        for group, cols in layer_slices:
            c = cosine_matrix(gramian_of(G[:, cols]))
            layer_cos[group] = {name: c[i, j].item() for i, j, name in pairs}
        stats["layer_cosines"] = layer_cos
    return stats


def logged_gramian(record: StepRecord) -> Tensor:
    """The Gramian ``G G^T`` [K, K] (float64) of a logged step's task gradients, rebuilt from
    its norms and cosines, ``(G G^T)_ij = |g_i| |g_j| cos(g_i, g_j)``, rows in the order of
    ``record.tasks``."""
    tasks = record.tasks
    if not record.grad_norms or not record.has_pairs:
        raise ValueError(f"step {record.step} logged no per-task gradient norms and cosines "
                         "(a loss weighting takes one backward pass of the weighted loss); "
                         "replay the log of a gradient combiner's run")
    norms = torch.tensor([record.grad_norms[task] for task in tasks], dtype=torch.float64)
    cosines = torch.eye(len(tasks), dtype=torch.float64)
    for i, j, pair in pair_names(tasks):
        cosine = record.cosine(pair)
        if cosine is None:
            raise ValueError(f"step {record.step} logged no cosine for the pair {pair}")
        cosines[i, j] = cosines[j, i] = cosine
    return norms[:, None] * cosines * norms[None, :]


def gradients_with_gramian(gramian: Tensor) -> Tensor:
    """K rows [K, K] (float64) whose Gramian is ``gramian``: its symmetric square root
    ``V sqrt(L) V^T`` for ``gramian = V L V^T`` (eigenvalues below 0, from rounding, set to 0).

    K gradients of any length P are, up to a rotation of R^P, these K vectors: a method that
    reads only the Gramian (PCGrad's and GradVac's decisions, MGDA's weights) decides on them
    exactly as on the real ``G``.
    """
    if gramian.dim() != 2 or gramian.shape[0] != gramian.shape[1]:
        raise ValueError(f"gramian must be a square [K, K] matrix, got {tuple(gramian.shape)}")
    if not torch.isfinite(gramian).all():
        raise ValueError("gramian holds NaN or infinite values")
    symmetric = (gramian.double() + gramian.double().T) / 2
    eigenvalues, vectors = torch.linalg.eigh(symmetric)
    return vectors @ torch.diag(eigenvalues.clamp_min(0).sqrt()) @ vectors.T
