"""Everything that defines a training run, saved as RUN/run_config.json.

Each option is declared once. The run's own settings are the fields of :class:`TrainConfig`,
each with its type, default, bounds and one line of help (the ``mtl-tutor train`` flags are
generated from them, :mod:`mtl_tutor.cli_arguments`). The choices come from the modules that
implement them (head names from :mod:`mtl_tutor.heads`, losses from :mod:`mtl_tutor.losses`,
samplers from :mod:`mtl_tutor.data.sampling`, combiners from :mod:`mtl_tutor.combiners`, ...),
and the options of a chosen head, loss, auxiliary loss, sampler, combiner or of the PALs are the
typed keyword parameters of its constructor. A value is checked when the config is made, the same
way from Python, a TOML recipe, run_config.json or the command line; an
:class:`~mtl_tutor.options.OptionError` names the option (``lr``, ``heads.sts.scale``).

run_config.json keeps the plain shape a TOML recipe uses: ``heads`` maps a task to
``{"name": ..., **options}``, ``losses`` a task to a name or ``{"name": ..., **options}``,
``aux_losses`` a task to ``{name: options}``, ``pals`` is null or PAL options with ``tasks``.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import torch

from .aux_losses import AUX_LOSS_NAMES, AUX_LOSSES, build_aux_loss
from .bert import BertConfig
from .cli_arguments import DefaultOrPerTask, KeyValues, SetThrough, SwitchWithOptions, TaskChoices
from .combiners import COMBINER_NAMES, get_combiner
from .damaged_files import DamagedFileError, read_json
from .data.batching import PAIR_ENCODINGS
from .data.sampling import SAMPLER_NAMES, get_sampler
from .data.tasks import MULTITASK, TASKS, TaskSpec, get_task
from .heads import BUILT_BY_THE_MODEL, HEAD_NAMES, HEADS, default_head
from .losses import TASK_LOSSES, TaskLoss
from .options import (
    Bounds,
    OptionError,
    convert,
    convert_field,
    keyword_options,
    keyword_parameters,
    option,
)
from .pals import ProjectedAttentionLayers
from .schedules import LR_SCHEDULES
from .smart import SMART_PLACEMENTS

TaskName = Literal[tuple(TASKS)]
PairEncoding = Literal[PAIR_ENCODINGS]
HeadName = Literal[HEAD_NAMES]
LossName = Literal[tuple(TASK_LOSSES)]
AuxLossName = Literal[AUX_LOSS_NAMES]
SamplerName = Literal[SAMPLER_NAMES]
CombinerName = Literal[COMBINER_NAMES]
LRScheduleName = Literal[tuple(LR_SCHEDULES)]
SmartPlacement = Literal[SMART_PLACEMENTS]


@dataclass(frozen=True)
class HeadConfig:
    """A task's head: ``name`` in :data:`~mtl_tutor.heads.HEADS` (None: the task's default
    head, :func:`~mtl_tutor.heads.default_head`, which ``options`` then tune) and keyword
    options of that head's constructor."""

    name: HeadName | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: HeadConfig | Mapping, option: str, task: TaskSpec,
              encoding: str) -> HeadConfig:
        if isinstance(raw, HeadConfig):
            raw = raw.to_dict()
        if not isinstance(raw, Mapping):
            raise OptionError(option, f"must be a mapping of a head name and options, got {raw!r}")
        options = dict(raw)
        name = convert(options.pop("name", None), HeadName | None, f"{option}.name")
        head = HEADS[name or default_head(task, encoding)["name"]]
        return cls(name, keyword_options(head, options, option, skip=BUILT_BY_THE_MODEL))

    def to_dict(self) -> dict:
        return {**({"name": self.name} if self.name else {}), **self.options}


@dataclass(frozen=True)
class LossConfig:
    """A task's loss: ``name`` in :data:`~mtl_tutor.losses.TASK_LOSSES` and its options."""

    name: LossName
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: LossConfig | str | Mapping, option: str, task: TaskSpec) -> LossConfig:
        if isinstance(raw, LossConfig):
            raw = raw.to_dict()
        options = {"name": raw} if isinstance(raw, str) else raw
        if not isinstance(options, Mapping) or "name" not in options:
            raise OptionError(option, f"must be a loss name or a mapping with a name and "
                                      f"options, got {raw!r}")
        options = dict(options)
        name = convert(options.pop("name"), LossName, f"{option}.name")
        loss = TASK_LOSSES[name]
        inputs = [k for k, (_, default) in keyword_parameters(loss).items()
                  if default is inspect.Parameter.empty]
        options = keyword_options(loss, options, option, skip=inputs)
        _built(option, TaskLoss, name, task.label, **options)
        return cls(name, options)

    def to_dict(self) -> dict:
        return {"name": self.name, **self.options}


@dataclass(frozen=True)
class AuxLossConfig:
    """One auxiliary loss of a task: ``name`` in :data:`~mtl_tutor.aux_losses.AUX_LOSSES` and
    its options (``weight`` among them)."""

    name: AuxLossName
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse_all(cls, raw: Mapping, option: str, task: TaskSpec) -> dict[str, AuxLossConfig]:
        """``{name: options}`` -> ``{name: AuxLossConfig}``."""
        if not isinstance(raw, Mapping):
            raise OptionError(option, f"must map auxiliary loss names to options, got {raw!r}")
        parsed = {}
        for name, options in raw.items():
            if isinstance(options, AuxLossConfig):
                options = options.options
            name = convert(name, AuxLossName, f"{option} name")
            options = keyword_options(AUX_LOSSES[name], options or {}, f"{option}.{name}",
                                      skip=("label",))
            _built(f"{option}.{name}", build_aux_loss, name, task, options)
            parsed[name] = cls(name, options)
        return parsed


@dataclass(frozen=True)
class PALConfig:
    """Projected attention layers: the ``tasks`` that get them (None: every task) and keyword
    options of :class:`~mtl_tutor.pals.ProjectedAttentionLayers`, passed on unchanged."""

    tasks: tuple[TaskName, ...] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: PALConfig | Mapping, option: str, tasks: tuple[str, ...]) -> PALConfig:
        if isinstance(raw, PALConfig):
            raw = raw.to_dict()
        if not isinstance(raw, Mapping):
            raise OptionError(option, f"must be a mapping of PAL options, got {raw!r}")
        options = dict(raw)
        pal_tasks = convert(options.pop("tasks", None), tuple[TaskName, ...] | None,
                            f"{option}.tasks")
        if pal_tasks is not None:
            _among_tasks(pal_tasks, tasks, f"{option}.tasks")
        return cls(pal_tasks, keyword_options(ProjectedAttentionLayers, options, option,
                                              skip=("bert", "tasks")))

    def to_dict(self) -> dict:
        return {**self.options, **({} if self.tasks is None else {"tasks": self.tasks})}


@dataclass
class TrainConfig:
    """Every setting of a training run. Make it in Python, from a TOML recipe (the same keys),
    with :meth:`load` from run_config.json, or with ``mtl-tutor train --flag-name ...``."""

    backbone: str = option("minilm-l6", "minilm-l6 (embedded), tiny, a checkpoint directory or "
                                        "a hub name", metavar="NAME")
    data: str = option("", "folder of task files (default: $MTL_TUTOR_DATA, else where "
                           "mtl-tutor data download puts them)", method=False, metavar="DIR")
    out: str = option("runs/run", "run directory to create", method=False, metavar="DIR")
    tasks: tuple[TaskName, ...] = option(MULTITASK, "the tasks trained together "
                                                    "(comma-separated)", metavar="TASK,...")
    combiner: CombinerName = option("sum", "how the task gradients become one update "
                                           "(mtl_tutor.combiners)")
    combiner_options: dict[str, Any] = option({}, "a combiner option, e.g. c=0.4 (repeatable)",
                                              cli=KeyValues("--combiner-opt"))
    sampler: SamplerName = option("round-robin", "which tasks each step holds")
    sampler_options: dict[str, Any] = option(
        {}, "a sampler option, e.g. task_order=shuffled; warmup_task and warmup_epochs "
            "for any sampler (repeatable)", cli=KeyValues("--sampler-opt"))
    heads: dict[TaskName, HeadConfig] = option(
        {}, "a task's head (mtl_tutor.heads.HEADS), e.g. sts=cosine; options without a name "
            "tune the task's default head", cli=TaskChoices("--head", "--head-opt"))
    pair_encoding: PairEncoding = option(
        "bi", "how sentence pairs are encoded: bi (each sentence alone) or cross (one sequence)",
        cli=DefaultOrPerTask("--pair-encoding", per_task="pair_encodings"))
    pair_encodings: dict[TaskName, PairEncoding] = option(
        {}, "a pair task's encoding over pair_encoding", cli=SetThrough("--pair-encoding"))
    losses: dict[TaskName, LossConfig] = option(
        {}, "a task's loss (mtl_tutor.losses.TASK_LOSSES), e.g. sts=huber",
        cli=TaskChoices("--loss", "--loss-opt"))
    aux_losses: dict[TaskName, dict[AuxLossName, AuxLossConfig]] = option(
        {}, "add an auxiliary loss (mnrl, triplet, smart, bregman) to a task, e.g. sts=mnrl; "
            "its options e.g. sts.mnrl.weight=0.5",
        cli=TaskChoices("--aux-loss", "--aux-loss-opt", several=True))
    pals: PALConfig | None = option(
        None, "projected attention layers per task (options: those of "
              "mtl_tutor.pals.ProjectedAttentionLayers, and tasks=sst,sts)",
        cli=SwitchWithOptions("--pals", "--pals-opt"))
    smart_placement: SmartPlacement = option(
        "task-loss", "where SMART's terms enter a step: each task's loss, so the combiner sees "
                     "them (task-loss), or their gradient added to the combined direction "
                     "(after-combining)")
    epochs: int = option(3, "passes over the training data", bounds=Bounds(ge=1))
    max_steps: int | None = option(None, "stop after this many optimiser steps (smoke runs)",
                                   bounds=Bounds(ge=1))
    batch_size: int = option(32, "examples per task per step", bounds=Bounds(ge=1))
    max_length: int = option(128, "tokens per sequence after truncation (at most the "
                                  "backbone's position embeddings)", bounds=Bounds(ge=2))
    length_bucketing: bool = option(True, "batch sentences of similar length (little padding)")
    lr: float = option(5e-5, "peak learning rate of the backbone", bounds=Bounds(gt=0))
    head_lr: float | None = option(1e-3, "peak learning rate of the task heads and PALs "
                                         "(none: lr); fresh heads need larger steps",
                                   bounds=Bounds(gt=0))
    layer_lr_decay: float = option(1.0, "each layer of the backbone learns at this times the "
                                        "rate of the layer above (Sun et al. 2019); 1: one rate",
                                   bounds=Bounds(gt=0, le=1))
    weight_decay: float = option(0.01, "AdamW's decoupled weight decay", bounds=Bounds(ge=0))
    ema_decay: float = option(0.0, "evaluate and save an exponential moving average of the "
                                   "weights with this decay, e.g. 0.995 (mtl_tutor."
                                   "weight_average); 0: the weights themselves",
                              bounds=Bounds(ge=0, lt=1))
    warmup_fraction: float = option(0.1, "linear warm-up over this fraction of the steps, then "
                                         "decay", bounds=Bounds(ge=0, lt=1))
    lr_schedule: LRScheduleName = option("linear", "decay of the learning rate after the "
                                                   "warm-up")
    freeze_backbone_steps: int = option(0, "the backbone skips the optimiser for the first N "
                                           "steps (heads and PALs train)", bounds=Bounds(ge=0))
    dropout_schedule: tuple[float, float] | None = option(
        None, "every dropout's p, linear from START to END over the epochs (set as each "
              "starts)", bounds=Bounds(ge=0, lt=1), metavar=("START", "END"))
    head_dropout: float | None = option(
        None, "the task heads' dropout p for the whole run (none: each head's own); "
              "dropout_schedule then moves the backbone's only", bounds=Bounds(ge=0, lt=1))
    accumulation_steps: int = option(1, "micro-batches of batch_size per task in one optimiser "
                                        "step", bounds=Bounds(ge=1))
    max_grad_norm: float | None = option(1.0, "clip the combined gradient's norm to this "
                                              "(none: no clipping)", bounds=Bounds(gt=0))
    seed: int = option(0, "seeds the weights of new heads, the batches and the combiner",
                       bounds=Bounds(ge=0))
    strict_data: bool = option(False, "a defective data row is an error instead of a warning",
                               method=False)
    eval_every: int | None = option(None, "evaluate every N steps as well as after every epoch",
                                    bounds=Bounds(ge=1), method=False)
    eval_batch_size: int = option(128, "examples per evaluation batch", bounds=Bounds(ge=1),
                                  method=False)
    checkpoint_every: int | None = option(None, "also save the full training state every N "
                                                "steps (always after each evaluation)",
                                          bounds=Bounds(ge=1), method=False)
    device: str = option("auto", "auto (cuda when available), cpu, cuda, cuda:1, ...",
                         method=False)
    log_layer_cosines: bool = option(True, "per-layer-group task cosines in every log record",
                                     method=False)
    progress: bool = option(True, "a progress bar in the terminal", method=False)

    def __post_init__(self) -> None:
        hints = _config_types()
        nested = ("heads", "losses", "aux_losses", "pals")
        for f in fields(self):
            if f.name not in nested:
                setattr(self, f.name, convert_field(f, getattr(self, f.name), hints[f.name]))
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise OptionError("tasks", f"must name one or more distinct tasks, got {self.tasks}")
        for task in self.pair_encodings:
            _among_tasks([task], self.tasks, "pair_encodings")
            if get_task(task).kind != "pair":
                raise OptionError(f"pair_encodings.{task}", "is set, but the task is not a "
                                                            "sentence-pair task")
        self.heads = self._per_task("heads", lambda t, raw, name: HeadConfig.parse(
            raw, name, get_task(t), self.encoding_of(t)))
        self.losses = self._per_task("losses", lambda t, raw, name: LossConfig.parse(
            raw, name, get_task(t)))
        self.aux_losses = self._per_task("aux_losses", lambda t, raw, name: AuxLossConfig
                                         .parse_all(raw, name, get_task(t)))
        if self.pals is not None:
            self.pals = PALConfig.parse(self.pals, "pals", self.tasks)
        _built("sampler_options", get_sampler, self.sampler, dict.fromkeys(self.tasks, 1), 1,
               **self.sampler_arguments())
        _built("combiner_options", get_combiner, self.combiner, seed=self.seed,
               tasks=self.tasks, **self.combiner_options)
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError as e:
                raise OptionError("device", f"must be auto or a torch device (cpu, cuda, cuda:1, "
                                            f"mps, ...), got {self.device!r}") from e

    def _per_task(self, name: str, parse) -> dict:
        value = getattr(self, name)
        if not isinstance(value, Mapping):
            raise OptionError(name, f"must map task names to settings, got {value!r}")
        _among_tasks(list(value), self.tasks, name)
        return {task: parse(task, raw, f"{name}.{task}") for task, raw in value.items()}

    def encoding_of(self, task: str) -> str:
        """How ``task``'s sentence pairs are encoded: "bi" or "cross"."""
        return self.pair_encodings.get(task, self.pair_encoding)

    def sampler_arguments(self) -> dict:
        """The sampler's keyword options; the annealed sampler's schedule spans the run's
        epochs unless its options say otherwise."""
        if self.sampler == "annealed":
            return {"epochs": self.epochs, **self.sampler_options}
        return dict(self.sampler_options)

    def check_backbone(self, bert_config: BertConfig) -> None:
        """Refuse, before any step, settings the backbone cannot run (naming the option)."""
        limit = bert_config.max_position_embeddings
        if self.max_length > limit:
            raise OptionError("max_length", f"must be <= {limit}, the position embeddings of "
                                            f"backbone {self.backbone!r}, got {self.max_length}")

    def method_differences(self, other: TrainConfig) -> list[tuple[str, Any, Any]]:
        """``(field, value here, value in other)`` for each setting of what is trained that
        differs (paths, device, evaluation and logging may differ: their ``method`` is False)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [(f.name, mine[f.name], theirs[f.name]) for f in fields(self)
                if f.metadata["method"] and mine[f.name] != theirs[f.name]]

    def to_dict(self) -> dict:
        """The plain, JSON-ready form that run_config.json and TOML recipes hold."""
        raw = {f.name: getattr(self, f.name) for f in fields(self)}
        raw["heads"] = {t: h.to_dict() for t, h in self.heads.items()}
        raw["losses"] = {t: loss.to_dict() for t, loss in self.losses.items()}
        raw["aux_losses"] = {t: {n: a.options for n, a in auxes.items()}
                             for t, auxes in self.aux_losses.items()}
        raw["pals"] = None if self.pals is None else self.pals.to_dict()
        return json.loads(json.dumps(raw))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_dict(cls, raw: Mapping) -> TrainConfig:
        """The config a plain mapping (run_config.json, a TOML recipe) describes; an unknown key
        is refused, listing the valid ones."""
        known = [f.name for f in fields(cls)]
        for key in raw:
            if key not in known:
                raise OptionError(repr(key), f"is not an option; valid options: "
                                             f"{', '.join(known)}")
        return cls(**raw)

    @classmethod
    def of_run(cls, run_dir: str | Path, **changes: Any) -> TrainConfig:
        """The config of the run in ``run_dir``, to continue it there: ``out`` is ``run_dir``
        wherever the run was made (its run_config.json records where). ``changes`` may set how
        the run executes (``data``, ``device``, ``progress``, ...), never what it trains."""
        run_dir = Path(run_dir)
        if not (run_dir / "run_config.json").is_file():
            raise FileNotFoundError(f"{run_dir}: no run_config.json; not a run directory that "
                                    "mtl-tutor train wrote")
        fixed = fixed_when_resumed(changes)
        if fixed:
            raise ValueError(f"{', '.join(fixed)}: a run continues with the settings it was made "
                             "with; start a new run to change them")
        return replace(cls.load(run_dir / "run_config.json"), **changes, out=str(run_dir))

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a run_config.json (from any version of mtl-tutor); errors name the file."""
        path = Path(path)
        raw = read_json(path)
        if not isinstance(raw, dict):
            raise DamagedFileError(path, f"must hold a JSON object, got "
                                         f"{type(raw).__name__}")
        try:
            return cls.from_dict(raw)
        except OptionError as e:
            raise OptionError(f"{path}: {e.option}", e.problem) from e


def fixed_when_resumed(names) -> list[str]:
    """Those of the TrainConfig fields ``names`` that a continued run cannot change: what it
    trains (the fields whose ``method`` is True) and where it is (``out``)."""
    return [f.name for f in fields(TrainConfig)
            if f.name in names and (f.metadata["method"] or f.name == "out")]


@functools.cache
def _config_types() -> dict:
    """TrainConfig's field types (its annotations are strings until resolved)."""
    return typing.get_type_hints(TrainConfig)


def _among_tasks(names, tasks: tuple[str, ...], option: str) -> None:
    unknown = [n for n in names if n not in tasks]
    if unknown:
        raise OptionError(option, f"names {', '.join(map(repr, unknown))}, not among the run's "
                                  f"tasks ({', '.join(tasks)})")


def _built(option: str, build, *args, **kwargs) -> None:
    """``build(*args, **kwargs)``, so that the checks of the thing built run now; a refusal
    names ``option``."""
    try:
        build(*args, **kwargs)
    except OptionError as e:
        raise OptionError(f"{option}.{e.option}", e.problem) from e
    except (TypeError, ValueError) as e:
        raise OptionError(option, f": {e}") from e

