"""A combiner's private ``torch.optim.Adam`` and learnt per-task values as flat tensors, so that
``state_dict()`` stays a ``dict[str, Tensor]`` that checkpoints can store (FAMO's logits,
GradNorm's weights, GradAttention's network). Per-task values are stored under
``"{prefix}/{task}"``, so a checkpoint restores each task's own entry whatever the order."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def adam_tensors(optimizer: torch.optim.Adam, prefix: str) -> dict[str, Tensor]:
    """Every per-parameter Adam buffer (step, exp_avg, exp_avg_sq) under ``prefix``."""
    flat = {}
    for index, buffers in optimizer.state_dict()["state"].items():
        for key, value in buffers.items():
            flat[f"{prefix}{index}.{key}"] = torch.as_tensor(value).clone()
    return flat


def load_adam_tensors(optimizer: torch.optim.Adam, state: dict[str, Tensor], prefix: str) -> None:
    """Inverse of :func:`adam_tensors` (hyper-parameters stay those of ``optimizer``)."""
    buffers: dict[int, dict[str, Tensor]] = {}
    for name, value in state.items():
        if name.startswith(prefix):
            index, key = name.removeprefix(prefix).split(".", 1)
            buffers.setdefault(int(index), {})[key] = value.clone()
    full = optimizer.state_dict()
    full["state"] = buffers
    optimizer.load_state_dict(full)


def by_task(values: Tensor, tasks: Sequence[str], prefix: str) -> dict[str, Tensor]:
    """``values`` [K] (one entry per task of ``tasks``) as ``{"prefix/task": entry}``."""
    return {f"{prefix}/{task}": value.clone() for task, value in zip(tasks, values)}


def from_tasks(state: dict[str, Tensor], tasks: Sequence[str], prefix: str) -> Tensor:
    """Inverse of :func:`by_task`: the entries of ``tasks``, in that order."""
    missing = [task for task in tasks if f"{prefix}/{task}" not in state]
    if missing:
        raise ValueError(f"the saved state has no {prefix!r} for tasks {missing}")
    return torch.stack([state[f"{prefix}/{task}"] for task in tasks])


class TaskValues:
    """One learnt value per task, stepped by a private Adam, for a method that needs every task
    in every step (FAMO's logits, GradNorm's weights).

    The tasks are fixed by :meth:`start`, at the first step or when the combiner's tasks are
    declared; a later step with other tasks is a ValueError naming the method.
    """

    def __init__(self, method: str, initial: float, dtype: torch.dtype, lr: float,
                 weight_decay: float = 0.0) -> None:
        self.method, self.initial, self.dtype = method, initial, dtype
        self.lr, self.weight_decay = lr, weight_decay
        self.tasks: tuple[str, ...] | None = None
        self.values: Tensor | None = None  # [K], the tasks in the order of self.tasks
        self.optimizer: torch.optim.Adam | None = None

    def start(self, tasks: tuple[str, ...]) -> Tensor:
        """The values of ``tasks``, created at the first call; later calls must name the same
        tasks in the same (canonical) order."""
        if self.values is None:
            self.tasks = tasks
            self.values = torch.full((len(tasks),), self.initial, dtype=self.dtype,
                                     requires_grad=True)
            self.optimizer = torch.optim.Adam([self.values], lr=self.lr,
                                              weight_decay=self.weight_decay)
        elif tasks != self.tasks:
            raise ValueError(f"{self.method} needs every task in every step: its tasks are "
                             f"{list(self.tasks)}, this step holds {list(tasks)}")
        return self.values

    def step(self, gradient: Tensor) -> None:
        """One Adam step of the values along ``gradient`` [K]."""
        self.values.grad = gradient.to(self.dtype)
        self.optimizer.step()
        self.values.grad = None

    def state_dict(self, prefix: str) -> dict[str, Tensor]:
        if self.values is None:
            return {}
        state = by_task(self.values.detach(), self.tasks, prefix)
        adam = self.optimizer.state_dict()["state"]
        if adam:
            (buffers,) = adam.values()
            state["adam.step"] = torch.as_tensor(buffers["step"]).clone()
            for key in ("exp_avg", "exp_avg_sq"):
                state.update(by_task(buffers[key], self.tasks, f"adam.{key}"))
        return state

    def load_state_dict(self, state: dict[str, Tensor], prefix: str) -> None:
        """Restore the values saved by :meth:`state_dict`, each by its task name (the tasks are
        this object's if started, else those saved, in sorted order)."""
        saved = tuple(sorted(k.removeprefix(prefix + "/") for k in state
                             if k.startswith(prefix + "/")))
        if not saved:
            return
        values = self.start(self.tasks or saved)
        with torch.no_grad():
            values.copy_(from_tasks(state, self.tasks, prefix))
        if "adam.step" in state:
            full = self.optimizer.state_dict()
            full["state"] = {0: {"step": state["adam.step"].clone(),
                                 **{key: from_tasks(state, self.tasks, f"adam.{key}")
                                    for key in ("exp_avg", "exp_avg_sq")}}}
            self.optimizer.load_state_dict(full)
