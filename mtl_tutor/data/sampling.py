"""Which tasks a training step holds: the task samplers.

A :class:`Sampler` decides which tasks a step contains; a step is a list of task names, one batch
of each (drawn from that task's :class:`~mtl_tutor.data.task_batches.TaskBatches`). A sampler is
a pure function of (seed, step), so its ``state_dict`` is tiny and a restored sampler goes on
exactly as the original would have.

Samplers (``get_sampler(name, ...)``):
- "round-robin": every step holds one batch of every task, so the trainer gets K per-task
  gradients per step (what gradient combiners need).
- "sequential": all batches of task 1, then all of task 2, ...; one task per step (or as many
  batches of each as one task has).
- "proportional": one task per step, task k drawn with probability N_k / sum_j N_j.
- "annealed": Stickland & Murray 2019, "BERT and PALs: Projected Attention Layers for Efficient
  Adaptation in Multi-Task Learning", https://arxiv.org/abs/1902.02671, section 4: task k drawn
  with probability p_k proportional to N_k^alpha, alpha = 1 - 0.8 (e - 1) / (E - 1) in epoch
  e = 1..E, from proportional (alpha = 1) towards nearly uniform (alpha = 0.2).
Any sampler takes ``warmup_task=..., warmup_epochs=N``: only that task for the first N epochs, as
Kehoe & Ravella (CS224N 2023 report) trained on paraphrase alone for 5 epochs first; the wrapped
sampler then counts its epochs from the end of the warm-up. A warm-up epoch is one pass over the
warm-up task, or, with ``warmup_epoch_length=TASK``, as many batches as TASK has (an epoch sized to
STS, say).
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod

import numpy as np

from ..options import positive_int


class Sampler(ABC):
    """Decides which tasks each training step contains.

    Steps are numbered from 0 over the whole run. ``tasks_for_step(step)`` is a pure function of
    the seed and ``step``; iterating a sampler walks the steps in order, and its state is the
    next step number.
    """

    name: str = ""

    def __init__(self, task_sizes: dict[str, int], batch_size: int, *, seed: int = 0):
        if not task_sizes:
            raise ValueError("task_sizes must name at least one task")
        for task, size in task_sizes.items():
            positive_int(size, f"task_sizes[{task!r}]")
        self.task_sizes = dict(task_sizes)
        self.batch_size = positive_int(batch_size, "batch_size")
        self.seed, self.step = int(seed), 0

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(self.task_sizes)

    @property
    def every_step_holds_every_task(self) -> bool:
        """Whether every step holds a batch of every task (combiners that need all tasks in
        each step ask this). True for round-robin; one-task-per-step samplers only when there
        is a single task."""
        return len(self.task_names) == 1

    def batches(self, task: str) -> int:
        """Batches in one pass over ``task``."""
        return math.ceil(self.task_sizes[task] / self.batch_size)

    def options(self) -> dict:
        """The constructor options beyond task sizes, batch size and seed (for repr and state)."""
        return {}

    def __repr__(self) -> str:
        args = [f"{self.task_sizes!r}", f"batch_size={self.batch_size}", f"seed={self.seed}"]
        args += [f"{k}={v!r}" for k, v in self.options().items()]
        return f"{type(self).__name__}({', '.join(args)})"

    @abstractmethod
    def steps_per_epoch(self, epoch: int = 0) -> int:
        """Steps in epoch ``epoch`` (0-based)."""

    @abstractmethod
    def tasks_in_epoch(self, epoch: int, index: int) -> list[str]:
        """Tasks of step ``index`` (0-based) of epoch ``epoch``."""

    def epoch_of(self, step: int) -> tuple[int, int]:
        """(epoch, index within that epoch) of global step ``step``."""
        if step < 0:
            raise ValueError(f"step must be non-negative, got {step}")
        epoch = 0
        while step >= self.steps_per_epoch(epoch):
            step -= self.steps_per_epoch(epoch)
            epoch += 1
        return epoch, step

    def total_steps(self, epochs: int) -> int:
        """Steps in the first ``epochs`` epochs."""
        return sum(self.steps_per_epoch(e) for e in range(epochs))

    def tasks_for_step(self, step: int) -> list[str]:
        return self.tasks_in_epoch(*self.epoch_of(step))

    def rng(self, epoch: int, index: int) -> np.random.Generator:
        """The random draws of one step, independent of every other step's."""
        return np.random.default_rng([self.seed, epoch, index])

    def __iter__(self) -> Sampler:
        return self

    def __next__(self) -> list[str]:
        tasks = self.tasks_for_step(self.step)
        self.step += 1
        return tasks

    def config(self) -> dict:
        """What a saved state must match: everything but the seed and the step."""
        return {"class": type(self).__name__, "task_sizes": self.task_sizes,
                "batch_size": self.batch_size, **self.options()}

    def state_dict(self) -> dict:
        return {"config": self.config(), "seed": self.seed, "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where the saved sampler stopped (its seed included)."""
        if state["config"] != self.config():
            raise ValueError(f"sampler state was saved with {state['config']}, "
                             f"this sampler has {self.config()}")
        self.seed, self.step = int(state["seed"]), int(state["step"])


class RoundRobinSampler(Sampler):
    """Every step: one batch of every task.

    epoch_length: "min" or "max" (steps = batches of the smallest / largest task), or a task name
      (steps = batches of that task); the other tasks' streams wrap around or stop short.
    task_order: "fixed" (the order of ``task_sizes``) or "shuffled" (a fresh order every step).
    """

    name = "round-robin"

    def __init__(self, task_sizes: dict[str, int], batch_size: int, *, seed: int = 0,
                 epoch_length: str = "max", task_order: str = "fixed"):
        super().__init__(task_sizes, batch_size, seed=seed)
        if epoch_length not in ("min", "max", *self.task_names):
            raise ValueError(f"epoch_length must be 'min', 'max' or a task name "
                             f"({', '.join(self.task_names)}), got {epoch_length!r}")
        if task_order not in ("fixed", "shuffled"):
            raise ValueError(f"task_order must be 'fixed' or 'shuffled', got {task_order!r}")
        self.epoch_length, self.task_order = epoch_length, task_order

    def options(self) -> dict:
        return {"epoch_length": self.epoch_length, "task_order": self.task_order}

    @property
    def every_step_holds_every_task(self) -> bool:
        return True

    def steps_per_epoch(self, epoch: int = 0) -> int:
        counts = [self.batches(t) for t in self.task_names]
        if self.epoch_length == "min":
            return min(counts)
        if self.epoch_length == "max":
            return max(counts)
        return self.batches(self.epoch_length)

    def tasks_in_epoch(self, epoch: int, index: int) -> list[str]:
        if self.task_order == "fixed":
            return list(self.task_names)
        order = self.rng(epoch, index).permutation(len(self.task_names))
        return [self.task_names[i] for i in order]


class SequentialSampler(Sampler):
    """The batches of the first task, then those of the second, ...; one task per step.

    epoch_length: "all" (every batch of every task) or a task name (each task gives as many
      batches as that task has, as in an epoch sized to it; the other streams wrap around or
      stop short).
    """

    name = "sequential"

    def __init__(self, task_sizes: dict[str, int], batch_size: int, *, seed: int = 0,
                 epoch_length: str = "all"):
        super().__init__(task_sizes, batch_size, seed=seed)
        if epoch_length not in ("all", *self.task_names):
            raise ValueError(f"epoch_length must be 'all' or a task name "
                             f"({', '.join(self.task_names)}), got {epoch_length!r}")
        self.epoch_length = epoch_length

    def options(self) -> dict:
        return {"epoch_length": self.epoch_length}

    def task_steps(self, task: str) -> int:
        """Steps of ``task`` in one epoch."""
        return self.batches(task if self.epoch_length == "all" else self.epoch_length)

    def steps_per_epoch(self, epoch: int = 0) -> int:
        return sum(self.task_steps(t) for t in self.task_names)

    def tasks_in_epoch(self, epoch: int, index: int) -> list[str]:
        for task in self.task_names:
            if index < self.task_steps(task):
                return [task]
            index -= self.task_steps(task)
        raise ValueError(f"step {index} lies beyond epoch {epoch}")


class ProportionalSampler(Sampler):
    """One task per step, task k drawn with probability N_k^alpha / sum_j N_j^alpha, alpha = 1.

    steps_per_epoch: steps in an epoch; by default the batches of all tasks together, so that
      on average every example is seen once per epoch.
    """

    name = "proportional"

    def __init__(self, task_sizes: dict[str, int], batch_size: int, *, seed: int = 0,
                 steps_per_epoch: int | None = None):
        super().__init__(task_sizes, batch_size, seed=seed)
        if steps_per_epoch is not None:
            positive_int(steps_per_epoch, "steps_per_epoch")
        self.epoch_steps = steps_per_epoch

    def options(self) -> dict:
        return {"steps_per_epoch": self.epoch_steps}

    def steps_per_epoch(self, epoch: int = 0) -> int:
        return self.epoch_steps or sum(self.batches(t) for t in self.task_names)

    def alpha(self, epoch: int) -> float:
        return 1.0

    def probabilities(self, epoch: int) -> np.ndarray:
        """p_k for each task (in ``task_names`` order) during epoch ``epoch`` (0-based)."""
        weights = np.array([self.task_sizes[t] for t in self.task_names], dtype=float)
        weights = weights ** self.alpha(epoch)
        return weights / weights.sum()

    def tasks_in_epoch(self, epoch: int, index: int) -> list[str]:
        k = self.rng(epoch, index).choice(len(self.task_names), p=self.probabilities(epoch))
        return [self.task_names[k]]


class AnnealedSampler(ProportionalSampler):
    """Annealed sampling of Stickland & Murray 2019 (https://arxiv.org/abs/1902.02671):
    p_k proportional to N_k^alpha, alpha = 1 - 0.8 (e - 1) / (E - 1) in epoch e = 1..E
    (alpha = 1 when E = 1; epochs after E keep alpha = 0.2).

    epochs: E, the number of epochs the annealing spans.
    """

    name = "annealed"

    def __init__(self, task_sizes: dict[str, int], batch_size: int, *, seed: int = 0,
                 epochs: int = 3, steps_per_epoch: int | None = None):
        super().__init__(task_sizes, batch_size, seed=seed, steps_per_epoch=steps_per_epoch)
        self.epochs = positive_int(epochs, "epochs")

    def options(self) -> dict:
        return {"epochs": self.epochs, **super().options()}

    def alpha(self, epoch: int) -> float:
        if self.epochs == 1:
            return 1.0
        e = min(epoch + 1, self.epochs)
        return 1.0 - 0.8 * (e - 1) / (self.epochs - 1)


class WarmupSampler(Sampler):
    """Only ``warmup_task`` for the first ``warmup_epochs`` epochs, then ``sampler`` (whose
    epochs count from the end of the warm-up).

    warmup_epoch_length: the task whose batches one warm-up epoch has (None: the warm-up task's
      own, one pass over it).
    """

    def __init__(self, sampler: Sampler, warmup_task: str, warmup_epochs: int,
                 warmup_epoch_length: str | None = None):
        super().__init__(sampler.task_sizes, sampler.batch_size, seed=sampler.seed)
        if warmup_task not in self.task_sizes:
            raise ValueError(f"warmup_task must be one of {', '.join(self.task_names)}, "
                             f"got {warmup_task!r}")
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) \
                or warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be a non-negative integer, got {warmup_epochs!r}")
        if warmup_epoch_length is not None and warmup_epoch_length not in self.task_sizes:
            raise ValueError(f"warmup_epoch_length must be one of {', '.join(self.task_names)}, "
                             f"got {warmup_epoch_length!r}")
        self.sampler, self.warmup_task, self.warmup_epochs = sampler, warmup_task, warmup_epochs
        self.warmup_epoch_length = warmup_epoch_length
        self.name = sampler.name

    def options(self) -> dict:
        options = {"sampler": self.sampler.config(), "warmup_task": self.warmup_task,
                   "warmup_epochs": self.warmup_epochs}
        if self.warmup_epoch_length is not None:  # saved states of earlier runs stay valid
            options["warmup_epoch_length"] = self.warmup_epoch_length
        return options

    @property
    def every_step_holds_every_task(self) -> bool:
        """The warm-up's steps hold one task only."""
        single = len(self.task_names) == 1
        return (single or self.warmup_epochs == 0) and self.sampler.every_step_holds_every_task

    def __repr__(self) -> str:
        length = (f", warmup_epoch_length={self.warmup_epoch_length!r}"
                  if self.warmup_epoch_length is not None else "")
        return (f"WarmupSampler({self.sampler!r}, warmup_task={self.warmup_task!r}, "
                f"warmup_epochs={self.warmup_epochs}{length})")

    def steps_per_epoch(self, epoch: int = 0) -> int:
        if epoch < self.warmup_epochs:
            return self.batches(self.warmup_epoch_length or self.warmup_task)
        return self.sampler.steps_per_epoch(epoch - self.warmup_epochs)

    def tasks_in_epoch(self, epoch: int, index: int) -> list[str]:
        if epoch < self.warmup_epochs:
            return [self.warmup_task]
        return self.sampler.tasks_in_epoch(epoch - self.warmup_epochs, index)

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.sampler.seed = self.seed


SAMPLERS: dict[str, type[Sampler]] = {
    cls.name: cls
    for cls in (RoundRobinSampler, SequentialSampler, ProportionalSampler, AnnealedSampler)
}
SAMPLER_NAMES: tuple[str, ...] = tuple(SAMPLERS)
WARMUP_OPTIONS = ("warmup_task", "warmup_epochs", "warmup_epoch_length")


def sampler_options(name: str) -> tuple[str, ...]:
    """The keyword options sampler ``name`` accepts (warm-up options included)."""
    own = [p for p in inspect.signature(SAMPLERS[name]).parameters
           if p not in ("task_sizes", "batch_size", "seed")]
    return (*own, *WARMUP_OPTIONS)


def get_sampler(name: str, task_sizes: dict[str, int], batch_size: int, *, seed: int = 0,
                **options) -> Sampler:
    """The sampler called ``name`` over tasks of ``task_sizes`` examples, ``batch_size`` a batch.

    >>> sampler = get_sampler("round-robin", {"sst": 100, "sts": 50}, 10, epoch_length="min")
    >>> sampler.steps_per_epoch(), sampler.tasks_for_step(0)
    (5, ['sst', 'sts'])
    """
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; valid samplers: {', '.join(SAMPLER_NAMES)}")
    valid = sampler_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)} for sampler {name!r}; "
                         f"valid options: {', '.join(valid)}")
    warmup = {k: options.pop(k) for k in WARMUP_OPTIONS if k in options}
    sampler = SAMPLERS[name](task_sizes, batch_size, seed=seed, **options)
    if not warmup:
        return sampler
    if "warmup_task" not in warmup or "warmup_epochs" not in warmup:
        raise ValueError("warm-up needs both warmup_task and warmup_epochs")
    return WarmupSampler(sampler, **warmup)
