"""The multitask model: one shared BERT, one head per task, and optionally task-specific PALs.

``model.loss(batch)`` is the task's loss on a :class:`~mtl_tutor.data.batching.Batch` (one task
per batch): the task loss chosen by name (:class:`~mtl_tutor.losses.TaskLoss`; cross-entropy for
class labels, binary cross-entropy on a logit for 0/1 labels, MSE for scores by default) plus
each auxiliary loss of the task times its weight (MNRL, triplet, SMART; see
:mod:`mtl_tutor.aux_losses`). SMART's two terms (smoothness and Bregman) are part of that loss,
so a combiner sees them in the task's gradient, unless ``smart_placement="after-combining"``:
then ``model.loss`` leaves them out and ``model.smart_loss(batch)`` gives them alone, for the
trainer to add their gradient to the combined direction (as the CS224N Kehoe & Ravella report
applied SMART after its gradient surgery).
``model.predict(batch)`` applies the decision rule: arg-max class, logit > 0, or the score
clipped to the label range.

Pair tasks are encoded per task as "bi" (each sentence alone, a head on (u, v)) or "cross" (one
joint sequence, a head on its pooled vector); the batches must be collated the same way.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .aux_losses import build_aux_loss
from .bert import BertModel
from .data.batching import check_pair_encoding
from .data.tasks import TaskSpec, get_task
from .heads import build_head, default_head, pool
from .losses import DEFAULT_LOSS, TaskLoss
from .pals import ProjectedAttentionLayers
from .run_config import TrainConfig
from .smart import SMART_PLACEMENTS, BregmanProximalPoint, SmoothnessRegulariser


def output_size(task: TaskSpec) -> int:
    return task.num_labels if task.label == "class" else 1


SMART_TERMS = (SmoothnessRegulariser, BregmanProximalPoint)


def linear_dropout(start: float, end: float, epoch: int, epochs: int) -> float:
    """Dropout probability at ``epoch`` (from 0), linear from ``start`` to ``end`` at the last
    epoch."""
    return start + (end - start) * epoch / max(1, epochs - 1)


class MultitaskModel(nn.Module):
    """bert: the shared backbone. tasks: name -> TaskSpec.

    head_configs: task -> {"name": head name, **options}, over :func:`default_head`.
    pair_encodings: task -> "bi" or "cross" (pair tasks; default "bi").
    losses: task -> loss name or {"name": ..., **options} (default by label kind).
    aux_losses: task -> {aux loss name: {"weight": ..., **options}}.
    pals: None, or options of :class:`~mtl_tutor.pals.ProjectedAttentionLayers` ("tasks"
    defaults to every task).
    head_dropout: the p of every ``nn.Dropout`` in the task heads, fixed for the whole run
    (None: each head's own); the backbone's dropout is left alone.
    smart_placement: "task-loss" (SMART's terms are part of each task's loss) or
    "after-combining" (:meth:`loss` leaves them out; :meth:`smart_loss` gives them).
    """

    def __init__(self, bert: BertModel, tasks: dict[str, TaskSpec],
                 head_configs: dict[str, dict] | None = None, *,
                 pair_encodings: dict[str, str] | None = None,
                 losses: dict[str, str | dict] | None = None,
                 aux_losses: dict[str, dict[str, dict]] | None = None,
                 pals: dict | None = None, head_dropout: float | None = None,
                 smart_placement: str = "task-loss"):
        super().__init__()
        if smart_placement not in SMART_PLACEMENTS:
            raise ValueError(f"smart_placement must be one of {SMART_PLACEMENTS}, "
                             f"got {smart_placement!r}")
        if head_dropout is not None and not 0 <= head_dropout < 1:
            raise ValueError(f"head_dropout must be in [0, 1), got {head_dropout}")
        self.bert = bert
        self.tasks = dict(tasks)
        for group, names in (("head_configs", head_configs), ("pair_encodings", pair_encodings),
                             ("losses", losses), ("aux_losses", aux_losses)):
            unknown = sorted(set(names or {}) - set(self.tasks))
            if unknown:
                raise ValueError(f"{group} names tasks {unknown} not in {sorted(self.tasks)}")
        self.pair_encodings = {t: check_pair_encoding((pair_encodings or {}).get(t, "bi"))
                               for t, spec in self.tasks.items() if spec.kind == "pair"}
        configs = {t: default_head(spec, self.pair_encodings.get(t, "bi"))
                   for t, spec in self.tasks.items()}
        for t, cfg in (head_configs or {}).items():  # options without a name tune the default
            configs[t] = dict(cfg) if "name" in cfg else {**configs[t], **cfg}
        self.head_configs = configs
        C = bert.config.hidden_size
        self.heads = nn.ModuleDict({
            name: build_head(cfg["name"], C, output_size(self.tasks[name]),
                             **{k: v for k, v in cfg.items() if k != "name"})
            for name, cfg in configs.items()
        })
        self.head_dropout = head_dropout
        if head_dropout is not None:
            _set_dropout(self.heads, head_dropout)
        for name, head in self.heads.items():
            bi = self.pair_encodings.get(name) == "bi"
            if head.takes_pair != bi:
                raise ValueError(f"task {name!r}: head {configs[name]['name']!r} "
                                 f"{'reads' if head.takes_pair else 'cannot read'} a bi-encoded "
                                 f"pair, but the task is {self._encoding(name)}")
        self.losses = {t: self._task_loss(spec, (losses or {}).get(t))
                       for t, spec in self.tasks.items()}
        self.aux_losses = {t: [build_aux_loss(n, self.tasks[t], dict(o or {}))
                               for n, o in (aux_losses or {}).get(t, {}).items()]
                           for t in self.tasks}
        for t, auxes in self.aux_losses.items():
            for aux in auxes:
                if aux.needs_pair and self.pair_encodings.get(t) != "bi":
                    raise ValueError(f"task {t!r}: {aux!r} needs a bi-encoded pair, but the "
                                     f"task is {self._encoding(t)}")
        self.smart_placement = smart_placement
        after = smart_placement == "after-combining"
        self.smart_terms = {t: [a for a in auxes if isinstance(a, SMART_TERMS)]
                            for t, auxes in self.aux_losses.items()}
        self.loss_terms = {t: [a for a in auxes if not (after and isinstance(a, SMART_TERMS))]
                           for t, auxes in self.aux_losses.items()}
        self.pals = None
        if pals is not None:
            options = dict(pals)
            self.pals = ProjectedAttentionLayers(bert, options.pop("tasks", list(self.tasks)),
                                                 **options)
        self.epoch = 0

    def _encoding(self, task: str) -> str:
        return f"{self.pair_encodings[task]}-encoded" if task in self.pair_encodings else "single"

    @staticmethod
    def _task_loss(task: TaskSpec, spec: str | dict | None) -> TaskLoss:
        spec = {"name": spec} if isinstance(spec, str) else dict(spec or {})
        return TaskLoss(spec.pop("name", DEFAULT_LOSS[task.label]), task.label, **spec)

    def shared_parameters(self) -> list[nn.Parameter]:
        """The parameters every task updates: the BERT backbone's trainable ones."""
        return [p for p in self.bert.parameters() if p.requires_grad]

    def task_parameters(self, task: str | None = None) -> list[nn.Parameter]:
        """Parameters of one task each, heads and PALs (never part of G): every task's, or only
        those of ``task``."""
        if task is None:
            modules = [self.heads, *([] if self.pals is None else [self.pals])]
        else:
            has_pal = self.pals is not None and task in self.pals.tasks
            modules = [self.heads[task], *([self.pals.tasks[task]] if has_pal else [])]
        return [p for m in modules for p in m.parameters() if p.requires_grad]

    def encode(self, input_ids: Tensor, attention_mask: Tensor, pooling: str,
               token_type_ids: Tensor | None = None) -> Tensor:
        out = self.bert(input_ids, attention_mask, token_type_ids)
        return pool(out, attention_mask, pooling)

    def embed(self, batch) -> tuple[Tensor, ...]:
        """Pooled embeddings of a batch: (u, v) for a bi-encoded pair, (x,) otherwise."""
        pooling = self.heads[batch.task].pooling
        x = batch.inputs
        with nullcontext() if self.pals is None else self.pals.use(batch.task):
            if "input_ids_a" in x:  # bi-encoder pair: both sides in one BERT pass
                ids, mask = _stack_pair(x)
                return tuple(self.encode(ids, mask, pooling).chunk(2))
            return (self.encode(x["input_ids"], x["attention_mask"], pooling,
                                x.get("token_type_ids")),)

    def forward(self, batch) -> Tensor:
        """Raw head outputs for a batch of one task."""
        return self.heads[batch.task](*self.embed(batch))

    def loss(self, batch) -> Tensor:
        """The task's loss plus its auxiliary losses times their weights (SMART's terms only
        with ``smart_placement="task-loss"``)."""
        embeddings = self.embed(batch)
        output = self.heads[batch.task](*embeddings)
        loss = self.losses[batch.task](output, batch.labels)
        return loss + self._weighted(self.loss_terms[batch.task], batch, embeddings, output)

    def smart_loss(self, batch) -> Tensor | float:
        """The task's SMART terms times their weights, lambda_s R_s + mu D_Breg, alone (a fresh
        forward pass); 0.0 when the task has none."""
        terms = self.smart_terms[batch.task]
        if not terms:
            return 0.0
        embeddings = self.embed(batch)
        output = self.heads[batch.task](*embeddings)
        return self._weighted(terms, batch, embeddings, output)

    def _weighted(self, terms: list, batch, embeddings: tuple[Tensor, ...],
                  output: Tensor) -> Tensor | float:
        total = 0.0
        for aux in terms:
            total = total + aux.weight * aux(self, batch, embeddings, output)
        return total

    @torch.no_grad()
    def predict(self, batch) -> Tensor:
        return decide(self.tasks[batch.task], self(batch))

    def start_epoch(self, epoch: int, dropout: float | None = None) -> None:
        """Called by the trainer as epoch ``epoch`` (from 0) begins: loss schedules read
        ``self.epoch``; ``dropout`` (if given) becomes the p of every ``nn.Dropout`` (the
        backbone's attention-probability dropout is not an nn.Dropout and stays), the heads'
        excepted when ``head_dropout`` fixes theirs."""
        self.epoch = epoch
        if dropout is not None:
            _set_dropout(self.bert, dropout)
            if self.head_dropout is None:
                _set_dropout(self.heads, dropout)

    def after_optimizer_step(self) -> None:
        """Called by the trainer after every optimiser step (SMART's momentum teacher)."""
        for auxes in self.aux_losses.values():
            for aux in auxes:
                if hasattr(aux, "after_optimizer_step"):
                    aux.after_optimizer_step(self)


def build_model(bert: BertModel, config: TrainConfig,
                head_configs: dict[str, dict] | None = None) -> MultitaskModel:
    """The model ``config`` describes around ``bert``; ``head_configs`` (the complete configs a
    run saved in heads.json) replace ``config.heads`` when given. PAL options reach
    :class:`~mtl_tutor.pals.ProjectedAttentionLayers` by keyword, unchanged."""
    if head_configs is None:
        head_configs = {t: head.to_dict() for t, head in config.heads.items()}
    return MultitaskModel(
        bert, {t: get_task(t) for t in config.tasks}, head_configs,
        pair_encodings={t: config.encoding_of(t) for t in config.tasks
                        if get_task(t).kind == "pair"},
        losses={t: loss.to_dict() for t, loss in config.losses.items()},
        aux_losses={t: {n: a.options for n, a in auxes.items()}
                    for t, auxes in config.aux_losses.items()},
        pals=None if config.pals is None else config.pals.to_dict(),
        head_dropout=config.head_dropout, smart_placement=config.smart_placement)


def _set_dropout(module: nn.Module, p: float) -> None:
    """Set the p of every ``nn.Dropout`` inside ``module``."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout must be in [0, 1), got {p}")
    for m in module.modules():
        if isinstance(m, nn.Dropout):
            m.p = p


def _stack_pair(x: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Stack the two sides of a pair batch into one (2B, T) batch, padded to the longer side."""
    T = max(x["input_ids_a"].shape[1], x["input_ids_b"].shape[1])
    ids = torch.cat([F.pad(x["input_ids_a"], (0, T - x["input_ids_a"].shape[1])),
                     F.pad(x["input_ids_b"], (0, T - x["input_ids_b"].shape[1]))])
    mask = torch.cat([F.pad(x["attention_mask_a"], (0, T - x["attention_mask_a"].shape[1])),
                      F.pad(x["attention_mask_b"], (0, T - x["attention_mask_b"].shape[1]))])
    return ids, mask


def decide(task: TaskSpec, output: Tensor) -> Tensor:
    if task.label == "class":
        return output.argmax(-1)
    if task.label == "binary":
        return (output > 0).long()
    return output.clamp(*task.label_range)
