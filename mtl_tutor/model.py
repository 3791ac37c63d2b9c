"""The multitask model: one shared BERT and one head per task.

``model.loss(batch)`` is the task's loss on a :class:`~mtl_tutor.data.batching.Batch`:
cross-entropy for class labels (SST), binary cross-entropy on a logit for 0/1 labels (Quora),
mean squared error for scores (STS). ``model.predict(batch)`` applies the decision rule:
arg-max class, logit > 0, or the score clipped to the label range.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .bert import BertModel
from .data.tasks import TaskSpec
from .heads import build_head, pool


def default_head(task: TaskSpec) -> dict:
    """The head a task gets unless told otherwise (name and options)."""
    if task.kind == "single":
        return {"name": "sentence-mlp"}
    return {"name": "pair-mlp", "features": "u,v,|u-v|,u*v", "hidden_layers": (256,)}


def output_size(task: TaskSpec) -> int:
    return task.num_labels if task.label == "class" else 1


class MultitaskModel(nn.Module):
    def __init__(self, bert: BertModel, tasks: dict[str, TaskSpec],
                 head_configs: dict[str, dict] | None = None):
        super().__init__()
        self.bert = bert
        self.tasks = dict(tasks)
        configs = {name: default_head(task) for name, task in self.tasks.items()}
        configs.update(head_configs or {})
        self.head_configs = configs
        C = bert.config.hidden_size
        self.heads = nn.ModuleDict({
            name: build_head(cfg["name"], C, output_size(self.tasks[name]),
                             **{k: v for k, v in cfg.items() if k != "name"})
            for name, cfg in configs.items()
        })

    def shared_parameters(self) -> list[nn.Parameter]:
        """The parameters every task updates: the BERT backbone's trainable ones."""
        return [p for p in self.bert.parameters() if p.requires_grad]

    def task_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.heads.parameters() if p.requires_grad]

    def encode(self, input_ids: Tensor, attention_mask: Tensor, pooling: str,
               token_type_ids: Tensor | None = None) -> Tensor:
        out = self.bert(input_ids, attention_mask, token_type_ids)
        return pool(out, attention_mask, pooling)

    def forward(self, batch) -> Tensor:
        """Raw head outputs for a batch of one task."""
        head = self.heads[batch.task]
        x = batch.inputs
        if "input_ids_a" in x:  # bi-encoder pair: both sides in one BERT pass
            ids, mask = _stack_pair(x)
            u, v = self.encode(ids, mask, head.pooling).chunk(2)
            return head(u, v)
        return head(self.encode(x["input_ids"], x["attention_mask"], head.pooling,
                                x.get("token_type_ids")))

    def loss(self, batch) -> Tensor:
        return task_loss(self.tasks[batch.task], self(batch), batch.labels)

    @torch.no_grad()
    def predict(self, batch) -> Tensor:
        return decide(self.tasks[batch.task], self(batch))


def _stack_pair(x: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """Stack the two sides of a pair batch into one (2B, T) batch, padded to the longer side."""
    T = max(x["input_ids_a"].shape[1], x["input_ids_b"].shape[1])
    ids = torch.cat([F.pad(x["input_ids_a"], (0, T - x["input_ids_a"].shape[1])),
                     F.pad(x["input_ids_b"], (0, T - x["input_ids_b"].shape[1]))])
    mask = torch.cat([F.pad(x["attention_mask_a"], (0, T - x["attention_mask_a"].shape[1])),
                      F.pad(x["attention_mask_b"], (0, T - x["attention_mask_b"].shape[1]))])
    return ids, mask


def task_loss(task: TaskSpec, output: Tensor, labels: Tensor) -> Tensor:
    if task.label == "class":
        return F.cross_entropy(output, labels.long())
    if task.label == "binary":
        return F.binary_cross_entropy_with_logits(output, labels.to(output.dtype))
    return F.mse_loss(output, labels.to(output.dtype))


def decide(task: TaskSpec, output: Tensor) -> Tensor:
    if task.label == "class":
        return output.argmax(-1)
    if task.label == "binary":
        return (output > 0).long()
    return output.clamp(*task.label_range)
