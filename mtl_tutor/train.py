"""The trainer: one visible loop of named steps, extended by hooks.

One optimiser step (:func:`take_step`) on a batch of every task the sampler names:

1. :func:`task_gradients`: each task's loss backpropagated on its own into row k of the flat
   buffer ``G`` (:class:`~mtl_tutor.gradients.TaskGradients`), and :func:`combine_gradients`: the
   combiner turns ``G`` into one direction ``d``, which becomes the shared parameters' gradient;
   or, for a combiner whose weights depend on the losses only (``sum``, uncertainty weighting,
   ...), :func:`weighted_backward`: a single backward pass of ``sum_k w_k L_k``.
   Heads and PALs keep their own gradients either way.
2. :func:`add_smart_gradients` where SMART's terms are added after combining.
3. :func:`apply_update`: clipping, AdamW, the weights' moving average (``ema_decay``) and the
   learning-rate schedule.
4. :func:`report_losses_after_step` for combiners that read the losses after the step (FAMO).

A loss or gradient that is NaN or infinite stops the step before the update
(:func:`~mtl_tutor.divergence.stops_at`). Over several processes (``torchrun``) the batches are
sharded and G summed over them by :class:`~mtl_tutor.distributed.Processes`; with one process
that is the identity, and the steps read the same.

:func:`train` builds the run in memory (:func:`~mtl_tutor.training_run.build_run`), makes its
directory (never over another run: :mod:`mtl_tutor.run_directory`) or restores its checkpoint,
and loops; logging, evaluation, checkpoints and the progress bar are hooks called after every
step (:mod:`mtl_tutor.training_hooks`). Nothing saved is lost: SIGINT and SIGTERM finish the
current step, save and raise :class:`TrainingInterrupted`; ``train(config, resume=True)``
continues so that the parameters equal those of an uninterrupted run bit for bit on the CPU.

Callbacks are objects with any of ``on_step(record)``, ``on_eval(record)`` and
``on_train_end(summary)``; ``record`` is the :class:`~mtl_tutor.run_log.StepRecord` written to
``RUN/log.jsonl`` or the :class:`~mtl_tutor.run_log.EvalRecord` written to ``RUN/eval.jsonl``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .checkpoint import load_training_state, write_run_files
from .combiners import LossesAfterStep, NonFiniteInput
from .combiners.base import check_finite_losses
from .data import Batch, write_issues
from .divergence import NonFiniteStep, TrainingDiverged, diverged, stops_at
from .gradients import conflict_statistics
from .model import linear_dropout
from .run_config import TrainConfig
from .run_directory import (
    TRAINING_STATE,
    RunDirectoryError,
    check_new_run_directory,
    make_run_directory,
    remove_stale_temporaries,
)
from .run_log import RunLog, StepRecord
from .training_hooks import (
    Hooks,
    Progress,
    StopSignals,
    TrainingInterrupted,
    check_resumable,
    restore,
)
from .training_run import Run, build_run, resolve_device

__all__ = ["Run", "TrainingDiverged", "TrainingInterrupted", "add_smart_gradients",
           "apply_update", "build_run", "combine_gradients", "report_losses_after_step",
           "resolve_device", "take_step", "task_gradients", "train", "weighted_backward"]


def tasks_of(batches: list[list[Batch]]) -> list[str]:
    """The task of each row of ``G``: one list of micro-batches per task."""
    return [micro[0].task for micro in batches]


def take_step(run: Run, batches: list[list[Batch]], step: int) -> tuple[torch.Tensor, dict]:
    """One optimiser step on the micro-batches of each task (``config.accumulation_steps``
    each, their losses averaged): returns the task losses [K] and the step's statistics.

    Under ``torchrun`` ``batches`` are the global batches: each process backpropagates its
    shard's losses scaled by the shard's share of the rows, and G, the heads' gradients and the
    losses are summed over the processes, so every process combines alike. Loss weightings go
    through G there too, so that their weights come from the global losses (with accumulation
    they weigh the accumulated losses once, where one process weighs each micro-batch's own).
    """
    batches, shares = run.processes.shard(batches)
    with stops_at(step):  # a NaN or infinite loss or gradient stops the run before the update
        if run.combiner.needs_gradients or run.processes.several:
            losses = task_gradients(run, batches, shares)
            stats = combine_gradients(run, tasks_of(batches), losses)
        else:
            losses, stats = weighted_backward(run, batches)
        if run.model.smart_placement == "after-combining":
            add_smart_gradients(run, batches)
        apply_update(run, tasks_of(batches), step)
    if LossesAfterStep in run.combiner.events:
        report_losses_after_step(run, batches, shares)
    return losses, stats


def task_gradients(run: Run, batches: list[list[Batch]], shares: list[list[float]]
                   ) -> torch.Tensor:
    """Backpropagate each task's loss on its own into row k of ``G`` (its micro-batches' losses
    averaged, each scaled by its share of the global batch): the task losses [K], summed with G
    and the heads' gradients over the processes."""
    model, grads, A = run.model, run.grads, run.config.accumulation_steps
    losses = []
    for k, micro in enumerate(batches):
        total = 0.0
        for m, (batch, share) in enumerate(zip(micro, shares[k])):
            grads.capture(k, zero=m == 0)
            loss = model.loss(batch) / A * share
            loss.backward()
            total += loss.detach()
        losses.append(total)
    losses = torch.stack(losses)
    head_grads = [p.grad for p in model.task_parameters() if p.grad is not None]
    run.processes.sum_step(grads.G[:len(batches)], head_grads, losses)
    check_finite_losses(losses, tasks_of(batches))
    return losses


def combine_gradients(run: Run, tasks: list[str], losses: torch.Tensor) -> dict:
    """The combiner's direction ``d`` from the rows of ``G``, made the shared parameters'
    gradient; returns the step's conflict statistics. A loss weighting's weights also scale each
    task's head gradients, as its weighted backward pass would have."""
    grads, combiner = run.grads, run.combiner
    G = grads.G[:len(tasks)]
    combination = combiner.combine(G, losses, tasks)
    if not combiner.needs_gradients:
        for weight, task in zip(combination.weights.tolist(), tasks):
            for p in run.model.task_parameters(task):
                if p.grad is not None:
                    p.grad.mul_(weight)
    layers = grads.layer_slices if run.config.log_layer_cosines else ()
    stats = conflict_statistics(G, combination.direction, tasks, layers, combination)
    grads.write_direction(combination.direction)
    return stats


def weighted_backward(run: Run, batches: list[list[Batch]]) -> tuple[torch.Tensor, dict]:
    """A loss weighting's step in one process: per micro-batch, one backward pass of
    ``sum_k w_k L_k`` straight into the shared parameters' gradient (as cheap as ``sum``).
    Returns the losses [K] and each task's mean weight over the micro-batches."""
    model, A = run.model, run.config.accumulation_steps
    tasks = tasks_of(batches)
    run.grads.capture_direction()
    losses = weights = 0.0
    for m in range(A):
        task_losses = torch.stack([model.loss(micro[m]) for micro in batches])
        check_finite_losses(task_losses, tasks)
        task_weights = run.combiner.loss_weights(task_losses, tasks)
        (task_weights * task_losses).sum().div(A).backward()
        losses += task_losses.detach() / A
        weights += task_weights.detach() / A
    return losses, {"weights": dict(zip(tasks, weights.tolist()))}


def add_smart_gradients(run: Run, batches: list[list[Batch]]) -> None:
    """SMART after the gradient treatment (``smart_placement="after-combining"``, as the CS224N
    Kehoe & Ravella report applied it): with the combined direction d already in the shared
    parameters' ``.grad``, backpropagate each task's SMART terms (averaged over its
    micro-batches), so that the update is d + sum_k grad(lambda_s R_s^k + mu D_Breg^k) and no
    combiner sees the SMART gradients. The task losses returned by the step leave them out."""
    model, A = run.model, run.config.accumulation_steps
    for micro in batches:
        if not model.smart_terms[micro[0].task]:
            continue
        for batch in micro:
            loss = model.smart_loss(batch) / A
            check_finite_losses(loss.reshape(1), [batch.task])
            loss.backward()


def apply_update(run: Run, tasks: list[str], step: int) -> None:
    """Clip the gradient's total norm to ``max_grad_norm``, step AdamW (the backbone sits out
    the first ``freeze_backbone_steps`` steps), update the weights' moving average where the run
    keeps one, and advance the learning-rate schedule."""
    config, model = run.config, run.model
    if step < config.freeze_backbone_steps:
        for p in run.grads.params:
            p.grad = None
    # one foreach pass: the total norm clips and, non-finite iff some gradient entry is, checks
    max_norm = math.inf if config.max_grad_norm is None else config.max_grad_norm
    if not torch.isfinite(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)):
        task = tasks_with_non_finite_gradients(model, tasks)
        raise NonFiniteInput(task, "gradient", f"the gradient of task {task} is not finite")
    run.optimizer.step()
    model.after_optimizer_step()
    if run.weight_average is not None:
        run.weight_average.update()
    run.optimizer.zero_grad(set_to_none=True)
    run.schedule.step()


def report_losses_after_step(run: Run, batches: list[list[Batch]],
                             shares: list[list[float]]) -> None:
    """The same batches' losses after the update, to the combiner (FAMO's extra forward pass)."""
    A = run.config.accumulation_steps
    with torch.no_grad():
        losses = torch.stack([sum(run.model.loss(b) * w for b, w in zip(micro, share)) / A
                              for micro, share in zip(batches, shares)])
    run.processes.sum_losses(losses)
    tasks = tasks_of(batches)
    run.combiner.on_event(LossesAfterStep(dict(zip(tasks, losses.tolist()))))


def tasks_with_non_finite_gradients(model, tasks: list[str]) -> str:
    """The tasks whose own parameters' gradients are not finite, else all of them ("a/b/c":
    the non-finite entry is in the combined gradient of the shared parameters)."""
    bad = [t for t in tasks if any(p.grad is not None and not torch.isfinite(p.grad).all()
                                   for p in model.task_parameters(t))]
    return "/".join(bad or tasks)


def start_epoch(run: Run, epoch: int) -> None:
    """Tell the model an epoch begins, with the dropout the schedule sets for it."""
    config = run.config
    dropout = config.dropout_schedule and linear_dropout(*config.dropout_schedule, epoch,
                                                         config.epochs)
    run.model.start_epoch(epoch, dropout)


def draw_batches(run: Run, tasks: list[str]) -> list[list[Batch]]:
    """``accumulation_steps`` micro-batches of each task, on the run's device."""
    A = run.config.accumulation_steps
    return [[next(run.streams[t]).to(run.device) for _ in range(A)] for t in tasks]


def open_run(run: Run, resume: bool, overwrite: bool) -> tuple[Progress, RunLog | None]:
    """Restore a resumed run from its checkpoint.pt (removing stale temporary files), or make a
    new run's directory and its fixed files; then open the logs (rank 0 only)."""
    main = run.processes.main
    if resume:
        state = load_training_state(run.run_dir)
        check_resumable(run.config, state, run.run_dir)
        progress = Progress.resumed(restore(run, state), state["step"])
        if main:
            remove_stale_temporaries(run.run_dir)
    else:
        run.processes.wait_for_all()  # every process checked the directory before it is made
        if main:
            make_run_directory(run.run_dir, lambda path: write_run_files(
                path, run.config, run.model, run.tokenizer), overwrite)
        progress = Progress.new(run.config.tasks)
    if not main:
        return progress, None
    for split, issues in run.data_issues.items():
        if issues:
            write_issues(issues, run.run_dir / f"data_issues_{split}.txt")
    return progress, RunLog(run.run_dir, progress.first_step if resume else None)


def train(config: TrainConfig, callbacks=(), resume: bool = False,
          overwrite: bool = False) -> dict:
    """Train a multitask model as ``config`` says; return the best dev metrics and the run dir.

    resume: continue the run in ``config.out`` from its checkpoint.pt. Otherwise ``config.out``
    must be absent or empty, checked before anything is read: a new run never overwrites
    another, unless ``overwrite`` replaces an earlier run there.
    """
    if not resume:
        check_new_run_directory(config.out, overwrite)
    run = build_run(config)
    with StopSignals() as stop:
        progress, log = open_run(run, resume, overwrite)
        hooks = Hooks(run, progress, log, stop, callbacks)
        try:
            for step in range(progress.first_step, run.total_steps):
                epoch, index = run.sampler.epoch_of(step)
                if step == progress.first_step or index == 0:  # an epoch starts (or resumes)
                    start_epoch(run, epoch)
                batches = draw_batches(run, next(run.sampler))
                losses, stats = take_step(run, batches, step)
                tasks = tasks_of(batches)
                hooks.on_step(StepRecord.from_statistics(
                    step, epoch, run.schedule.get_last_lr()[0], dict(zip(tasks, losses.tolist())),
                    progress.elapsed(), stats))
                if stop.requested and run.processes.main and step + 1 < run.total_steps:
                    raise TrainingInterrupted(
                        f"{stop.requested} after step {step + 1}: the run is saved in "
                        f"{run.run_dir / TRAINING_STATE}; continue it with "
                        f"`mtl-tutor train --resume {run.run_dir}`")
        except NonFiniteStep as error:
            raise diverged(error, run.run_dir, run.model, config, progress.last_checkpoint,
                           progress.best, saves=run.processes.main) from None
        except OSError as error:
            raise unwritable(run.run_dir, error, progress) from error
        finally:
            hooks.close()
        summary = {"run": str(run.run_dir), "best": progress.best, "history": progress.history,
                   "steps": run.total_steps, "seconds": progress.elapsed()}
        for callback in callbacks if run.processes.main else ():
            if hasattr(callback, "on_train_end"):
                callback.on_train_end(summary)
    return summary


def unwritable(run_dir: Path, error: OSError, progress: Progress) -> RunDirectoryError:
    """The error for a run directory that could not be written during training."""
    saved = ("nothing was saved" if progress.last_checkpoint is None else
             f"the state after {progress.last_checkpoint} steps is in {run_dir / TRAINING_STATE}; "
             f"continue it with `mtl-tutor train --resume {run_dir}` once it can be written")
    return RunDirectoryError(f"cannot write {error.filename or run_dir} "
                             f"({error.strerror or error}); training stopped, {saved}")
