"""Data-parallel training over several processes (``torchrun``): shard, fill G, all-reduce once.

Every rank draws the same global batch of each task (the streams and the sampler are seeded
identically) and keeps a contiguous slice of its rows. Rank r scales its losses by
``n_r / n`` (its rows over the global batch's), so that summed over the ranks the gradients are
those of the global batch's mean loss::

    sum_r (n_r / n) grad L_r = grad (1/n) sum_i l_i = grad L

One step then sums G [K, P], the task-specific parameters' gradients and the losses over the
ranks (two collective calls), and every rank runs the same combiner, seeded alike, on the same
G: all ranks take the same optimiser step and their parameters never drift apart. This is data
parallelism as in "PyTorch Distributed: Experiences on Accelerating Data Parallel Training",
Shen Li et al., VLDB 2020, https://arxiv.org/abs/2006.15704, with the all-reduce moved from the
summed gradient to the per-task gradients a combiner needs.

The trainer reaches all of this through :class:`Processes`, the one place that knows how many
there are: with one process nothing is split or communicated (``world()`` is ``(0, 1)``), and the
trainer's steps read the same either way.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from .data.batching import Batch


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` when torch.distributed is not set up."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process writes files and shows progress (rank 0, or the only process)."""
    return world()[0] == 0


def init_from_env(device: torch.device) -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes (WORLD_SIZE > 1 in the environment).

    Backend "nccl" for a CUDA ``device``, "gloo" on the CPU; on CUDA, rank r takes the GPU
    LOCAL_RANK. Without those variables (a plain ``python`` or ``mtl-tutor`` call) nothing
    happens. Returns ``(rank, world_size)``.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return world()


def leave() -> None:
    """Leave the process group that :func:`init_from_env` joined, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard(batch: Batch, rank: int, world_size: int) -> tuple[Batch, float]:
    """Rank ``rank``'s contiguous slice of ``batch`` and its weight ``n_local / n_global``.

    The rows are split as evenly as possible (the first ``n % world_size`` ranks hold one more),
    so the slices partition the batch and the weights sum to one. A rank left without rows (a
    last batch smaller than the world) gets the batch's last row at weight 0: it still runs the
    same tasks as the others, so all ranks hold gradients of the same shapes to reduce.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size), got rank={rank}, "
                         f"world_size={world_size}")
    n = len(batch)
    if n == 0:
        raise ValueError(f"batch of task {batch.task!r} is empty: there are no rows to shard")
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    stop = start + base + (rank < extra)
    weight = (stop - start) / n
    if start == stop:
        start, stop = n - 1, n
    labels = None if batch.labels is None else batch.labels[start:stop]
    inputs = {k: v[start:stop] for k, v in batch.inputs.items()}
    return Batch(batch.task, inputs, labels, batch.ids[start:stop]), weight


def sum_over_ranks(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` in place over all ranks (one collective call); return it."""
    dist.all_reduce(tensor)
    return tensor


def all_reduce_step(G_rows: Tensor, head_grads: Sequence[Tensor], losses: Tensor) -> None:
    """Sum, in place over all ranks, the per-task gradients ``G_rows`` [K, P] (one call) and the
    task-specific parameters' gradients together with the losses [K] (one more call)."""
    sum_over_ranks(G_rows)
    flat = sum_over_ranks(torch.cat([g.reshape(-1) for g in head_grads]
                                    + [losses.reshape(-1).to(G_rows.device, G_rows.dtype)]))
    *chunks, summed_losses = flat.split([g.numel() for g in head_grads] + [losses.numel()])
    for g, chunk in zip(head_grads, chunks):
        g.copy_(chunk.view_as(g))
    losses.copy_(summed_losses.view_as(losses))


@dataclass(frozen=True)
class Processes:
    """The processes a run trains in: this one's ``rank`` among ``world_size``.

    What a training step does differently over several processes, in one place: each process
    takes its shard of every batch (:meth:`shard`) and the per-task gradients and losses are
    summed over the processes (:meth:`sum_step`, :meth:`sum_losses`). With one process each is
    the identity, so a step reads the same either way.
    """

    rank: int = 0
    world_size: int = 1

    @classmethod
    def of_this_run(cls) -> Processes:
        return cls(*world())

    @property
    def several(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Whether this process writes the run's files, evaluates and calls back (rank 0)."""
        return self.rank == 0

    def shard(self, batches: list[list[Batch]]) -> tuple[list[list[Batch]], list[list[float]]]:
        """This process's part of each task's micro-batches and each part's share of its
        batch's rows (:func:`shard`); with one process, the batches themselves at share 1."""
        if not self.several:
            return batches, [[1.0] * len(micro) for micro in batches]
        parts = [[shard(batch, self.rank, self.world_size) for batch in micro] for micro in batches]
        return ([[batch for batch, _ in micro] for micro in parts],
                [[share for _, share in micro] for micro in parts])

    def sum_step(self, G_rows: Tensor, head_grads: Sequence[Tensor], losses: Tensor) -> None:
        """:func:`all_reduce_step` over several processes; nothing with one."""
        if self.several:
            all_reduce_step(G_rows, head_grads, losses)

    def sum_losses(self, losses: Tensor) -> Tensor:
        """``losses`` summed over the processes (in place); unchanged with one."""
        return sum_over_ranks(losses) if self.several else losses

    def wait_for_all(self) -> None:
        """Return when every process has reached this point (at once with one process)."""
        if self.several:
            dist.barrier()
