"""When training diverges: the step, the task, what is saved, and advice that fits the cause.

A loss, a gradient or the model's dev-set outputs that turn NaN or infinite stop the run: nothing
trained after it could be trusted. The trainer's steps check before the update, so the model is
still the one before the failing step, and raise :class:`NonFiniteStep` saying where
(:func:`stops_at`);
:func:`diverged` turns it into the :class:`TrainingDiverged` the user reads.

The model before the step is saved as ``RUN/last_good.safetensors`` only once every one of its
weights has been checked finite; if some are not, the message says so and names what was saved
before instead (the last checkpoint, the best model so far).

The advice follows the cause. A step 0 that fails made no update yet, so the learning rates
cannot be the cause, but the backbone's weights or the task's loss settings can; unclipped
gradients and learning rates above what BERT fine-tuning uses (2e-5 to 5e-5 in Devlin et al.
2019, Appendix A.3) come next; when neither holds, the task's and the combiner's settings are
named instead of advising a lower learning rate that is already small.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .checkpoint import save_model
from .combiners import NonFiniteInput
from .damaged_files import non_finite_tensors
from .run_config import TrainConfig
from .run_directory import TRAINING_STATE

LAST_GOOD = "last_good.safetensors"
LARGE_LR = 1e-4  # above BERT fine-tuning's 2e-5 to 5e-5
LARGE_HEAD_LR = 1e-2


class TrainingDiverged(RuntimeError):
    """A loss, gradient or output became NaN or infinite; the message says at which step and
    task, what was saved and what to try."""


class NonFiniteStep(TrainingDiverged):
    """Where a step went non-finite: ``step`` (from 0, as in log.jsonl), ``task`` (several as
    "a/b"), ``what`` ("the loss", "the gradient", "an output on the dev set", ...);
    ``updated``: whether the model had already taken the step (False for the checks before the
    update)."""

    def __init__(self, step: int, task: str, what: str, updated: bool = False):
        self.step, self.task, self.what, self.updated = step, task, what, updated
        tasks = "tasks" if "/" in task else "task"
        super().__init__(f"step {step}: {what} of {tasks} {task} is NaN or infinite")

    def __reduce__(self):
        return type(self), (self.step, self.task, self.what, self.updated)


@contextmanager
def stops_at(step: int) -> Iterator[None]:
    """A :class:`~mtl_tutor.combiners.NonFiniteInput` raised inside (a check of a task's loss
    or gradient) becomes the :class:`NonFiniteStep` of step ``step``."""
    try:
        yield
    except NonFiniteInput as e:
        raise NonFiniteStep(step, e.task, f"the {e.what}") from e


def diverged(error: NonFiniteStep, run_dir: Path, model, config: TrainConfig,
             last_checkpoint: int | None, best: dict | None, saves: bool = True
             ) -> TrainingDiverged:
    """The error to raise for ``error``: what was saved (``saves``: this process writes the
    run's files) and the advice; the last good model is saved first when it is good."""
    saved = save_last_good(error, run_dir, model, last_checkpoint, best) if saves else ""
    return TrainingDiverged(f"{error}; training stopped. {saved}{advice(error, config)}")


def save_last_good(error: NonFiniteStep, run_dir: Path, model, last_checkpoint: int | None,
                   best: dict | None) -> str:
    """Save the model as ``last_good.safetensors`` if it is the model before the failed step and
    every weight is finite; return the sentences that say what is saved."""
    state = model.state_dict()
    bad = non_finite_tensors(state)
    if not error.updated and not bad:
        path = save_model(run_dir, model, LAST_GOOD)
        return f"The model before this step (all {len(state)} tensors finite) is in {path}. "
    which = f"after step {error.step}" if error.updated else "before this step"
    problem = (f"{len(bad)} of its {len(state)} tensors hold NaN or infinite values" if bad else
               "its outputs are not finite")
    earlier = []
    if last_checkpoint is not None:
        earlier.append(f"the state after {last_checkpoint} steps is in "
                       f"{run_dir / TRAINING_STATE}")
    if best is not None:
        earlier.append(f"the best model (dev overall {best.get('overall', float('nan')):.4f} "
                       f"after {best['step']} steps) is in {run_dir / 'model.safetensors'}")
    return (f"The model {which} was not saved: {problem}; "
            + ("; ".join(earlier) if earlier else "nothing was saved before it") + ". ")


def advice(error: NonFiniteStep, config: TrainConfig) -> str:
    """What to try, for the likely causes given the run's settings."""
    if error.step == 0 and not error.updated:
        return ("No update had been made yet, so the learning rates are not the cause: check "
                f"the backbone's weights ({config.backbone}) and task {error.task}'s loss, head "
                "and auxiliary-loss settings.")
    head_lr = config.head_lr or config.lr
    tips = []
    if config.max_grad_norm is None:
        tips.append("clipping the gradient's norm (--max-grad-norm 1.0)")
    if config.lr > LARGE_LR:
        tips.append(f"a lower --lr (it is {config.lr:g}; BERT is fine-tuned at 2e-5 to 5e-5)")
    if head_lr > LARGE_HEAD_LR:
        tips.append(f"a lower --head-lr (it is {head_lr:g})")
    if tips:
        return "Try " + "; ".join(tips) + ", in a new run."
    options = f" with options {config.combiner_options}" if config.combiner_options else ""
    return (f"The learning rates are small (lr {config.lr:g}, head_lr {head_lr:g}) and the "
            f"gradient's norm is clipped to {config.max_grad_norm:g}, so they are unlikely "
            f"causes: look at task {error.task}'s loss, head and auxiliary-loss settings, and at "
            f"combiner {config.combiner!r}{options}.")
