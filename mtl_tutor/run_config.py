"""Everything that defines a training run, saved as RUN/run_config.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

SMART_PLACEMENTS = ("task-loss", "after-combining")  # where SMART's terms enter a step


@dataclass
class TrainConfig:
    backbone: str = "minilm-l6"        # "minilm-l6", "tiny", a checkpoint directory or a hub name
    data: str = ""                     # directory of {task}-{split}.csv files
    out: str = "runs/run"              # run directory (created)
    tasks: tuple[str, ...] = ("sst", "quora", "sts")
    combiner: str = "sum"              # name in mtl_tutor.combiners.COMBINER_NAMES
    combiner_options: dict = field(default_factory=dict)
    sampler: str = "round-robin"       # name in mtl_tutor.data.sampling.SAMPLER_NAMES
    sampler_options: dict = field(default_factory=dict)
    heads: dict = field(default_factory=dict)  # task -> {"name": head name, **options}
    pair_encoding: str = "bi"          # "bi" (each sentence encoded alone) or "cross"
    pair_encodings: dict = field(default_factory=dict)  # task -> "bi"/"cross", over pair_encoding
    losses: dict = field(default_factory=dict)  # task -> loss name or {"name": ..., **options}
    aux_losses: dict = field(default_factory=dict)  # task -> {"mnrl"/"triplet"/"smart"/"bregman":
                                       # {"weight": ..., **options}} (mtl_tutor.model.AUX_LOSSES)
    pals: dict | None = None           # None (no PALs) or the options of
                                       # mtl_tutor.pals.ProjectedAttentionLayers
    smart_placement: str = "task-loss"  # SMART's terms in each task's loss, through the
                                       # combiner ("task-loss"), or their gradient added to the
                                       # combined direction ("after-combining")
    epochs: int = 3
    max_steps: int | None = None       # stop after this many optimiser steps (smoke runs)
    batch_size: int = 32               # examples per task per step
    max_length: int = 128              # tokens per sequence after truncation
    length_bucketing: bool = True      # batch sentences of similar length (little padding)
    lr: float = 5e-5                   # peak learning rate of the backbone
    head_lr: float | None = 1e-3       # peak learning rate of the task heads (None: lr); heads
                                       # start from random weights and need larger steps
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1       # linear warm-up over this fraction, then decay
    lr_schedule: str = "linear"        # decay after the warm-up: "linear" or "cosine"
    freeze_backbone_steps: int = 0     # the backbone skips the optimiser for the first N steps
    dropout_schedule: tuple[float, float] | None = None  # (start, end): every nn.Dropout's p,
                                       # linear over the epochs (set at each epoch's start)
    head_dropout: float | None = None  # the task heads' dropout p for the whole run (None: each
                                       # head's own); dropout_schedule then moves the rest only
    accumulation_steps: int = 1        # micro-batches per task per step (virtual batch size)
    max_grad_norm: float | None = 1.0  # clip the combined gradient's norm (None: no clipping)
    seed: int = 0
    strict_data: bool = False          # a defective data row is an error instead of a warning
    eval_every: int | None = None      # evaluate every N steps as well as after every epoch
    eval_batch_size: int = 128
    checkpoint_every: int | None = None  # also save the full training state every N steps
    device: str = "auto"               # "auto" (cuda when available), "cpu", "cuda", "cuda:1", ...
    log_layer_cosines: bool = True     # per-layer-group task cosines in every log record
    progress: bool = True              # tqdm bar in the terminal

    def __post_init__(self) -> None:
        self.tasks = tuple(self.tasks)
        if self.pair_encoding not in ("bi", "cross"):
            raise ValueError(f"pair_encoding must be 'bi' or 'cross', got {self.pair_encoding!r}")
        for task, encoding in self.pair_encodings.items():
            if encoding not in ("bi", "cross"):
                raise ValueError(f"pair_encodings[{task!r}] must be 'bi' or 'cross', "
                                 f"got {encoding!r}")
        if self.lr_schedule not in ("linear", "cosine"):
            raise ValueError(f"lr_schedule must be 'linear' or 'cosine', got {self.lr_schedule!r}")
        if self.freeze_backbone_steps < 0:
            raise ValueError(
                f"freeze_backbone_steps must be >= 0, got {self.freeze_backbone_steps}")
        if self.dropout_schedule is not None:
            self.dropout_schedule = tuple(self.dropout_schedule)
            if len(self.dropout_schedule) != 2 or not all(
                    0 <= p < 1 for p in self.dropout_schedule):
                raise ValueError(f"dropout_schedule must be (start, end) in [0, 1), "
                                 f"got {self.dropout_schedule}")
        if self.head_dropout is not None and not 0 <= self.head_dropout < 1:
            raise ValueError(f"head_dropout must be in [0, 1), got {self.head_dropout}")
        if self.smart_placement not in SMART_PLACEMENTS:
            raise ValueError(f"smart_placement must be one of {SMART_PLACEMENTS}, "
                             f"got {self.smart_placement!r}")
        for name in ("epochs", "batch_size", "max_length", "eval_batch_size",
                     "accumulation_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")

    def encoding_of(self, task: str) -> str:
        """How ``task``'s sentence pairs are encoded: "bi" or "cross"."""
        return self.pair_encodings.get(task, self.pair_encoding)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        raw = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{path}: unknown keys {unknown}; valid keys: {sorted(known)}")
        return cls(**raw)
