"""A training run built from its :class:`~mtl_tutor.run_config.TrainConfig`, in memory.

:func:`build_run` reads the data, loads the backbone, builds the model, the batch streams, the
sampler, the combiner, the gradient buffer ``G``, AdamW and the schedule, and checks that they fit
together (the device exists, ``max_length`` fits the backbone, the sampler feeds the combiner),
all before anything is written: the trainer makes the run directory only once the run is built.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .bert import load_backbone
from .combiners import ColumnGroups, Combiner, get_combiner
from .data import DataIssue, Sampler, TaskBatches, get_sampler, load_task
from .distributed import Processes, world
from .evaluate import ordered_batches
from .gradients import TaskGradients
from .layer_lr import layerwise_groups
from .model import MultitaskModel, build_model
from .optim import AdamW
from .options import OptionError
from .run_config import TrainConfig
from .schedules import LR_SCHEDULES
from .weight_average import WeightAverage

DEVICE_TYPES = ("cpu", "cuda", "mps")


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
    processes: Processes = field(default_factory=Processes)
    data_issues: dict[str, list[DataIssue]] = field(default_factory=dict)  # split -> rows
    weight_average: WeightAverage | None = None  # config.ema_decay > 0

    def ends_epoch(self, step: int) -> bool:
        """Whether step ``step`` (from 0) is the last of its epoch, or of the run."""
        epoch, index = self.sampler.epoch_of(step)
        return index + 1 == self.sampler.steps_per_epoch(epoch) or step + 1 == self.total_steps

    def evaluates_after(self, step: int) -> bool:
        """Whether the dev set is evaluated after step ``step``: at the end of every epoch and
        every ``eval_every`` steps."""
        every = self.config.eval_every
        return self.ends_epoch(step) or bool(every and (step + 1) % every == 0)

    def evaluated_weights(self) -> AbstractContextManager:
        """A block in which the model holds the weights that are scored and saved: their
        moving average when the run keeps one, else the weights themselves."""
        return nullcontext() if self.weight_average is None else self.weight_average.swapped_in()


def resolve_device(name: str) -> torch.device:
    """The device ``name`` says ("auto": CUDA when there is a GPU, else the CPU); an
    :class:`~mtl_tutor.options.OptionError` naming ``device`` when this machine lacks it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise OptionError("device", f"must be auto or a device (cpu, cuda, cuda:1, mps), "
                                    f"got {name!r}") from e
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.type not in DEVICE_TYPES:
        raise OptionError("device", f"is {name!r}, but training runs on {', '.join(DEVICE_TYPES)}")
    if device.type == "cuda" and gpus == 0:
        raise OptionError("device", f"is {name!r}, but this machine has no CUDA GPU that torch "
                                    "can use; use cpu (or auto: a GPU when there is one)")
    if device.type == "cuda" and device.index is not None and device.index >= gpus:
        raise OptionError("device", f"is {name!r}, but this machine has {gpus} CUDA GPU(s), "
                                    f"cuda:0 to cuda:{gpus - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise OptionError("device", f"is {name!r}, but Apple's MPS is not available here; use cpu")
    return device


def load_split(config: TrainConfig, split: str) -> tuple[dict, list[DataIssue]]:
    """Every task's file of a split, and its skipped rows and repeated ids."""
    data = {t: load_task(config.data, t, split, strict=config.strict_data) for t in config.tasks}
    return data, [issue for d in data.values() for issue in (*d.issues, *d.duplicates)]


def build_run(config: TrainConfig) -> Run:
    """Build a run in memory (nothing is written); under ``torchrun`` every rank builds the
    same one, and only rank 0 reads the dev set."""
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    processes = Processes(*world())
    train_data, train_issues = load_split(config, "train")
    dev_data, dev_issues = load_split(config, "dev") if processes.main else ({}, [])
    sampler = get_sampler(config.sampler, {t: len(d.examples) for t, d in train_data.items()},
                          config.batch_size, seed=config.seed, **config.sampler_arguments())
    total_steps = sampler.total_steps(config.epochs)
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    combiner = get_combiner(config.combiner, seed=config.seed, tasks=config.tasks,
                            **config.combiner_options)
    check_combiner_fits(config, sampler, combiner, processes.world_size)

    bert, tokenizer = load_backbone(config.backbone, seed=config.seed)
    config.check_backbone(bert.config)
    model = build_model(bert, config).to(device)
    streams = {t: TaskBatches(d, tokenizer, config.batch_size, seed=config.seed + i,
                              pair_encoding=config.encoding_of(t), max_length=config.max_length,
                              length_bucketing=config.length_bucketing)
               for i, (t, d) in enumerate(train_data.items())}
    shared = [(n, p) for n, p in model.bert.named_parameters() if p.requires_grad]
    grads = TaskGradients([p for _, p in shared], len(config.tasks), [n for n, _ in shared])
    combiner.on_event(ColumnGroups(tuple(grads.layer_slices)))
    groups = [*layerwise_groups(shared, bert.config.num_hidden_layers, config.lr,
                                config.layer_lr_decay),
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
    if processes.several:  # the ranks share the initial weights, not their dropout noise
        torch.manual_seed(config.seed + processes.rank)
    average = WeightAverage(model, config.ema_decay) if config.ema_decay else None
    return Run(config, Path(config.out), device, model, tokenizer, streams, sampler, combiner,
               grads, optimizer, schedule, dev_loaders, total_steps, processes,
               {"train": train_issues, "dev": dev_issues}, average)


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
