"""The trainer: one visible loop, extended by callbacks.

Each step draws one batch for every task the sampler names. With a combiner that needs per-task
gradients, each task's loss is backpropagated on its own into row k of the flat buffer ``G``
(:class:`~mtl_tutor.gradients.TaskGradients`); the combiner turns ``G`` into one direction ``d``,
which becomes the shared parameters' gradient. A combiner whose weights depend on the losses
only (``sum``, uncertainty weighting, ...) takes a single backward pass of the weighted loss.
Heads keep their own gradients either way. Then clipping, AdamW and the learning-rate schedule.

Nothing saved is lost: after every evaluation (and every ``checkpoint_every`` steps) the whole
training state goes atomically into ``RUN/checkpoint.pt``; SIGINT and SIGTERM finish the current
step, save and raise :class:`TrainingInterrupted`; ``train(config, resume=True)`` continues so
that the parameters equal those of an uninterrupted run bit for bit on the CPU.

Callbacks are objects with any of ``on_step(record)``, ``on_eval(record)`` and
``on_train_end(summary)``; ``record`` is the :class:`~mtl_tutor.run_log.StepRecord` written to
``RUN/log.jsonl`` or the :class:`~mtl_tutor.run_log.EvalRecord` written to ``RUN/eval.jsonl``.
"""

from __future__ import annotations

import math
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .bert import load_backbone
from .checkpoint import (
    load_training_state,
    save_model,
    save_training_state,
    write_run_files,
)
from .combiners import ColumnGroups, Combiner, EpochEnd, LossesAfterStep, get_combiner
from .data import Sampler, TaskBatches, get_sampler, load_task, write_issues
from .distributed import all_reduce_step, is_main, shard, sum_over_ranks, world
from .evaluate import evaluate, ordered_batches
from .gradients import TaskGradients, conflict_statistics
from .model import MultitaskModel, build_model, linear_dropout
from .optim import AdamW
from .run_config import TrainConfig
from .run_log import EvalRecord, RunLog, StepRecord
from .schedules import LR_SCHEDULES


class TrainingDiverged(RuntimeError):
    """A loss or gradient became NaN or infinite; the last good model was saved first."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; the state after the last finished step is in checkpoint.pt."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_split(config: TrainConfig, split: str, run_dir: Path | None = None) -> dict:
    """Load every task's file of a split, reporting skipped rows and repeated ids in
    ``run_dir``."""
    data = {t: load_task(config.data, t, split, strict=config.strict_data) for t in config.tasks}
    issues = [issue for d in data.values() for issue in (*d.issues, *d.duplicates)]
    if run_dir is not None and issues:
        write_issues(issues, run_dir / f"data_issues_{split}.txt")
    return data


@dataclass
class Run:
    """Everything a training run is made of, built from a :class:`TrainConfig`."""

    config: TrainConfig
    run_dir: Path
    device: torch.device
    model: MultitaskModel
    tokenizer: object
    streams: dict[str, TaskBatches]
    sampler: Sampler
    combiner: Combiner
    grads: TaskGradients
    optimizer: AdamW
    schedule: torch.optim.lr_scheduler.LambdaLR
    dev_loaders: dict[str, list]
    total_steps: int


def build_run(config: TrainConfig) -> Run:
    """Build a run; under ``torchrun`` every rank builds the same one, and only rank 0 writes."""
    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    rank, world_size = world()
    train_data = load_split(config, "train", run_dir if rank == 0 else None)
    dev_data = load_split(config, "dev", run_dir) if rank == 0 else {}  # rank 0 evaluates

    sampler = get_sampler(config.sampler, {t: len(d.examples) for t, d in train_data.items()},
                          config.batch_size, seed=config.seed, **config.sampler_arguments())
    total_steps = sampler.total_steps(config.epochs)
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    combiner = get_combiner(config.combiner, seed=config.seed, tasks=config.tasks,
                            **config.combiner_options)
    check_combiner_fits(config, sampler, combiner, world_size)

    bert, tokenizer = load_backbone(config.backbone, seed=config.seed)
    config.check_backbone(bert.config)
    model = build_model(bert, config).to(device)
    if rank == 0:
        write_run_files(run_dir, config, model, tokenizer)

    streams = {t: TaskBatches(d, tokenizer, config.batch_size, seed=config.seed + i,
                              pair_encoding=config.encoding_of(t), max_length=config.max_length,
                              length_bucketing=config.length_bucketing)
               for i, (t, d) in enumerate(train_data.items())}
    shared = [(n, p) for n, p in model.bert.named_parameters() if p.requires_grad]
    grads = TaskGradients([p for _, p in shared], len(config.tasks), [n for n, _ in shared])
    combiner.on_event(ColumnGroups(tuple(grads.layer_slices)))
    groups = [{"params": [p for _, p in shared]},
              {"params": model.task_parameters(), "lr": config.head_lr or config.lr}]
    if combiner.parameters():  # learnable weightings (uncertainty) move at the heads' rate
        groups.append({"params": combiner.parameters(), "lr": config.head_lr or config.lr,
                       "weight_decay": 0.0})
    optimizer = AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, LR_SCHEDULES[config.lr_schedule](
        int(config.warmup_fraction * total_steps), total_steps))
    dev_loaders = {t: [b.to(device) for b in ordered_batches(
        d, tokenizer, config.eval_batch_size, pair_encoding=config.encoding_of(t),
        max_length=config.max_length)] for t, d in dev_data.items()}
    if world_size > 1:  # the ranks share the initial weights, not their dropout noise
        torch.manual_seed(config.seed + rank)
    return Run(config, run_dir, device, model, tokenizer, streams, sampler, combiner, grads,
               optimizer, schedule, dev_loaders, total_steps)


def check_combiner_fits(config: TrainConfig, sampler: Sampler, combiner: Combiner,
                        world_size: int) -> None:
    """Refuse, before anything is trained or written, a combiner the run cannot feed."""
    if combiner.needs_every_task and not sampler.every_step_holds_every_task:
        warmup = " with a warm-up" if "warmup_task" in config.sampler_options else ""
        raise ValueError(
            f"sampler {config.sampler!r}{warmup} gives steps that hold only some of the tasks, "
            f"but combiner {config.combiner!r} needs every task in every step: "
            f"{combiner.needs_every_task}. Use --sampler round-robin (without a warm-up) or "
            "another combiner")
    if world_size > 1 and not combiner.needs_gradients and combiner.parameters():
        raise ValueError(f"combiner {config.combiner!r} learns weights through the loss, which "
                         "multi-process training does not support yet; run it in one process")
    if world_size > 1 and config.smart_placement == "after-combining":
        raise ValueError("smart_placement='after-combining' runs in one process only; "
                         "multi-process training keeps SMART in the task losses")


def training_state(run: Run, step: int, progress: dict) -> dict:
    """Everything that determines the rest of the run after ``step`` finished steps."""
    return {
        "step": step,
        "config": run.config.to_dict(),
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "schedule": run.schedule.state_dict(),
        "combiner": run.combiner.state_dict(),
        "sampler": run.sampler.state_dict(),
        "streams": {t: s.state_dict() for t, s in run.streams.items()},
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "progress": progress,
    }


def restore(run: Run, state: dict) -> dict:
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.schedule.load_state_dict(state["schedule"])
    run.combiner.load_state_dict(state["combiner"])
    run.sampler.load_state_dict(state["sampler"])
    for t, s in run.streams.items():
        s.load_state_dict(state["streams"][t])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"]:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["progress"]


def check_resumable(config: TrainConfig, state: dict, run_dir: Path) -> None:
    """Refuse to resume when run_config.json no longer describes the run the checkpoint holds
    (checkpoints written before configs were saved in them are not checked)."""
    if "config" not in state:
        return
    changed = config.method_differences(TrainConfig.from_dict(state["config"]))
    if changed:
        raise ValueError(
            f"{run_dir / 'run_config.json'} no longer matches the checkpoint it would resume: "
            + "; ".join(f"{name} is {now!r} there but {before!r} in the checkpoint"
                        for name, now, before in changed)
            + ". Restore those settings, or start a new run.")


class StopSignals:
    """While active, SIGINT/SIGTERM only set ``requested``; the loop stops after its step."""

    def __init__(self):
        self.requested: str | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def take_step(run: Run, batches: list[list], step: int) -> tuple[torch.Tensor, dict]:
    """One optimiser step on the micro-batches of each task (``config.accumulation_steps`` each,
    their losses averaged): returns the task losses and conflict statistics.

    Per-task backward passes into the rows of G and the combiner, or, for loss weightings, one
    backward pass of the weighted loss; then clipping, AdamW and the schedule.

    Under ``torchrun`` (see :mod:`mtl_tutor.distributed`) ``batches`` are the global batches:
    each rank backpropagates its shard's losses scaled by the shard's share of the rows, G, the
    heads' gradients and the losses are summed over the ranks, and every rank combines alike.
    Loss weightings go through G too there, so that their weights come from the global losses;
    with accumulation they weigh the accumulated losses once, where one process weighs each
    micro-batch by its own losses.
    """
    model, grads, combiner, config = run.model, run.grads, run.combiner, run.config
    tasks, A = [micro[0].task for micro in batches], config.accumulation_steps
    rank, world_size = world()
    distributed = world_size > 1
    shares = [[1.0] * len(micro) for micro in batches]  # each batch's share of its global batch
    if distributed:
        shards = [[shard(batch, rank, world_size) for batch in micro] for micro in batches]
        batches = [[batch for batch, _ in micro] for micro in shards]
        shares = [[weight for _, weight in micro] for micro in shards]
    if combiner.needs_gradients or distributed:
        losses = []
        for k, micro in enumerate(batches):
            total = 0.0
            for m, batch in enumerate(micro):
                grads.capture(k, zero=m == 0)
                loss = model.loss(batch) / A
                if distributed:
                    loss = loss * shares[k][m]
                else:
                    _check_finite(loss, step, batch.task, run.run_dir, model)
                loss.backward()
                total += loss.detach()
            losses.append(total)
        losses = torch.stack(losses)
        G = grads.G[:len(batches)]
        if distributed:
            all_reduce_step(G, [p.grad for p in model.task_parameters() if p.grad is not None],
                            losses)
            for loss, task in zip(losses, tasks):
                _check_finite(loss, step, task, run.run_dir, model)
        combination = combiner.combine(G, losses, tasks)
        if not combiner.needs_gradients:  # as in one process's weighted backward pass
            for w, task in zip(combination.weights.tolist(), tasks):
                torch._foreach_mul_([p.grad for p in model.task_parameters(task)
                                     if p.grad is not None], w)
        d = combination.direction
        stats = conflict_statistics(
            G, d, tasks, grads.layer_slices if config.log_layer_cosines else (), combination)
        grads.write_direction(d)
    else:
        grads.capture_direction()
        losses = weights = 0.0
        for m in range(A):
            task_losses = torch.stack([model.loss(micro[m]) for micro in batches])
            for loss, micro in zip(task_losses, batches):
                _check_finite(loss, step, micro[m].task, run.run_dir, model)
            task_weights = combiner.loss_weights(task_losses, tasks)
            (task_weights * task_losses).sum().div(A).backward()
            losses += task_losses.detach() / A
            weights += task_weights.detach() / A  # the micro-batches' mean weight per task
        stats = {"weights": dict(zip(tasks, weights.tolist()))}
    if model.smart_placement == "after-combining":
        add_smart_gradients(run, batches, step)
    if step < config.freeze_backbone_steps:  # the backbone skips this optimiser step
        for p in grads.params:
            p.grad = None
    # one foreach pass: the total norm clips and, non-finite iff some gradient entry is, checks
    max_norm = math.inf if config.max_grad_norm is None else config.max_grad_norm
    if not torch.isfinite(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)):
        _diverged(step, "/".join(tasks), "gradient", run.run_dir, model)
    run.optimizer.step()
    model.after_optimizer_step()
    run.optimizer.zero_grad(set_to_none=True)
    run.schedule.step()
    if LossesAfterStep in combiner.events:
        with torch.no_grad():
            losses_after = torch.stack([sum(model.loss(b) * w for b, w in zip(micro, share)) / A
                                        for micro, share in zip(batches, shares)])
            if distributed:
                sum_over_ranks(losses_after)
            combiner.on_event(LossesAfterStep(dict(zip(tasks, losses_after.tolist()))))
    return losses, stats


def add_smart_gradients(run: Run, batches: list[list], step: int) -> None:
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
            _check_finite(loss, step, batch.task, run.run_dir, model)
            loss.backward()


def train(config: TrainConfig, callbacks=(), resume: bool = False) -> dict:
    """Train a multitask model as ``config`` says; return the best dev metrics and the run dir.

    resume: continue the run in ``config.out`` from its ``checkpoint.pt``.
    """
    run = build_run(config)
    model, combiner, run_dir = run.model, run.combiner, run.run_dir
    main = is_main()  # under torchrun only rank 0 logs, evaluates, saves and calls back
    callbacks = callbacks if main else ()
    progress = {"best": None, "best_score": -math.inf, "history": [], "seconds": 0.0,
                "epoch_losses": {t: [] for t in config.tasks}}
    first_step = 0
    if resume:
        state = load_training_state(run_dir)
        check_resumable(config, state, run_dir)
        progress, first_step = restore(run, state), state["step"]
    on_step = [cb.on_step for cb in callbacks if hasattr(cb, "on_step")]
    on_eval = [cb.on_eval for cb in callbacks if hasattr(cb, "on_eval")]
    log = RunLog(run_dir if main else None, first_step if resume else None)
    bar = tqdm(total=run.total_steps, initial=first_step, desc=f"train {config.combiner}",
               disable=not (config.progress and main))
    start = time.perf_counter() - progress["seconds"]
    model.train()

    def checkpoint(step: int) -> None:
        progress["seconds"] = time.perf_counter() - start
        save_training_state(run_dir, training_state(run, step, progress))

    def run_eval(step: int, epoch: int) -> None:
        record = EvalRecord(step, epoch, evaluate(model, run.dev_loaders))
        log.write_eval(record)
        progress["history"].append(record.to_dict())
        if record.score > progress["best_score"]:
            progress["best"], progress["best_score"] = record.to_dict(), record.score
            save_model(run_dir, model)
        for fn in on_eval:
            fn(record)
        bar.write(f"epoch {epoch} step {step}: " + ", ".join(
            f"{k} {v:.3f}" for k, v in record.metrics.items()))

    try:
        with StopSignals() as stop:
            for step in range(first_step, run.total_steps):
                epoch, index = run.sampler.epoch_of(step)
                if step == first_step or index == 0:  # an epoch starts (or resumes)
                    dropout = config.dropout_schedule and linear_dropout(
                        *config.dropout_schedule, epoch, config.epochs)
                    model.start_epoch(epoch, dropout)
                tasks = next(run.sampler)
                A = config.accumulation_steps  # micro-batches per task; their losses are averaged
                batches = [[next(run.streams[t]).to(run.device) for _ in range(A)] for t in tasks]
                losses, stats = take_step(run, batches, step)

                record = StepRecord.from_statistics(
                    step, epoch, run.schedule.get_last_lr()[0], dict(zip(tasks, losses.tolist())),
                    time.perf_counter() - start, stats)
                log.write_step(record)
                for t, v in record.losses.items():
                    progress["epoch_losses"][t].append(v)
                for fn in on_step:
                    fn(record)
                bar.update()
                bar.set_postfix({t: f"{v:.3f}" for t, v in record.losses.items()}, refresh=False)

                last = step + 1 == run.total_steps
                end_of_epoch = index + 1 == run.sampler.steps_per_epoch(epoch) or last
                if end_of_epoch:
                    combiner.on_event(EpochEnd(epoch, {t: sum(v) / len(v) for t, v in
                                                       progress["epoch_losses"].items() if v}))
                    progress["epoch_losses"] = {t: [] for t in config.tasks}
                evaluate_now = config.eval_every and (step + 1) % config.eval_every == 0
                # Other ranks go on to the next step, whose all-reduce waits for rank 0.
                if main and (end_of_epoch or evaluate_now):
                    log.flush()
                    run_eval(step + 1, epoch + 1)
                periodic = config.checkpoint_every and (step + 1) % config.checkpoint_every == 0
                stop_now = main and stop.requested  # the others end when rank 0 has saved
                if main and (end_of_epoch or evaluate_now or periodic or last or stop_now):
                    log.flush()
                    checkpoint(step + 1)
                if stop_now and not last:
                    raise TrainingInterrupted(
                        f"{stop.requested} after step {step + 1}: the run is saved in "
                        f"{run_dir / 'checkpoint.pt'}; continue it with "
                        f"`mtl-tutor train --resume {run_dir}`")
    finally:
        bar.close()
        log.close()
    summary = {"run": str(run_dir), "best": progress["best"], "history": progress["history"],
               "steps": run.total_steps, "seconds": time.perf_counter() - start}
    for cb in callbacks:
        if hasattr(cb, "on_train_end"):
            cb.on_train_end(summary)
    return summary


def _check_finite(loss: torch.Tensor, step: int, task: str, run_dir: Path, model) -> None:
    if not torch.isfinite(loss):
        _diverged(step, task, "loss", run_dir, model)


def _diverged(step: int, task: str, what: str, run_dir: Path, model) -> None:
    path = run_dir / "last_good.safetensors"
    if is_main():  # every rank sees the same losses and gradients, and rank 0 saves
        save_model(run_dir, model, path.name)
    warnings.warn(f"step {step}: non-finite {what} for task {task}", stacklevel=2)
    raise TrainingDiverged(
        f"step {step}: the {what} of task {task} is NaN or infinite; training stopped. "
        f"The model before this step is saved in {path}. Try a lower --lr or --max-grad-norm."
    )
