"""Metrics of the CS224N multitask project and the overall score.

SST and Quora are scored by accuracy, STS by the Pearson correlation of predicted and gold
similarity, and the leaderboard combines them as

    overall = (sst_acc + para_acc + (sts_pearson + 1) / 2) / 3.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .model import decide

METRIC_KEYS = {"sst": "sst_acc", "quora": "para_acc", "sts": "sts_pearson", "cfimdb": "cfimdb_acc"}


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(predictions) == np.asarray(labels)).mean())


def pearson(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Pearson correlation; 0.0 when either side is constant (it is undefined there)."""
    x = np.asarray(predictions, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def overall_score(metrics: dict[str, float]) -> float:
    """The CS224N leaderboard's overall score from sst_acc, para_acc and sts_pearson."""
    return (metrics["sst_acc"] + metrics["para_acc"] + (metrics["sts_pearson"] + 1) / 2) / 3


class NonFiniteOutputs(ValueError):
    """The model's outputs for some rows of ``task`` are NaN or infinite."""

    def __init__(self, task: str, rows: int):
        self.task, self.rows = task, rows
        super().__init__(f"the model's outputs for {rows} row(s) of task {task} are NaN or "
                         "infinite")

    def __reduce__(self):
        return type(self), (self.task, self.rows)


@torch.no_grad()
def predict_task(model, batches) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Run the model over an iterable of batches of one task: ids, predictions, gold labels.
    Raises :class:`NonFiniteOutputs` when an output is NaN or infinite (no prediction can be
    made from it)."""
    was_training = model.training
    model.eval()
    ids, preds, gold = [], [], []
    for batch in batches:
        ids += batch.ids
        output = model(batch)
        finite = torch.isfinite(output.reshape(len(batch), -1)).all(-1)
        if not finite.all():
            raise NonFiniteOutputs(batch.task, int((~finite).sum()))
        preds.append(decide(model.tasks[batch.task], output).float().cpu().numpy())
        if batch.labels is not None:
            gold.append(batch.labels.float().cpu().numpy())
    model.train(was_training)
    return ids, np.concatenate(preds), np.concatenate(gold) if gold else None


def predict_rows(model, data, tokenizer, batch_size: int, *, pair_encoding: str = "bi",
                 max_length: int = 128, device: torch.device | str = "cpu") -> np.ndarray:
    """The model's prediction for every row of ``data`` (a task's file), in the file's order:
    one per row, so two rows that share an id get their own."""
    order = length_order(data.examples)
    batches = (b.to(device) for b in ordered_batches(
        data, tokenizer, batch_size, pair_encoding=pair_encoding, max_length=max_length))
    _, preds, _ = predict_task(model, batches)
    in_rows = np.empty_like(preds)
    in_rows[order] = preds
    return in_rows


def task_metric(task, predictions: np.ndarray, labels: np.ndarray) -> float:
    if task.metric == "pearson":
        return pearson(predictions, labels)
    return accuracy(predictions, labels)


def evaluate(model, loaders: dict[str, object]) -> dict[str, float]:
    """Metrics for every task in ``loaders`` (task name -> iterable of labelled batches), plus
    ``overall`` when SST, Quora and STS are all present."""
    metrics = {}
    for name, batches in loaders.items():
        _, preds, gold = predict_task(model, batches)
        key = METRIC_KEYS.get(name, f"{name}_metric")
        metrics[key] = task_metric(model.tasks[name], preds, gold)
    if all(k in metrics for k in ("sst_acc", "para_acc", "sts_pearson")):
        metrics["overall"] = overall_score(metrics)
    return {k: (v if math.isfinite(v) else float("nan")) for k, v in metrics.items()}


def length_order(examples) -> list[int]:
    """The examples' indices from the shortest text to the longest (ties keep file order)."""
    return sorted(range(len(examples)),
                  key=lambda i: len(examples[i].text_a) + len(examples[i].text_b or ""))


def ordered_batches(data, tokenizer, batch_size: int, *, pair_encoding: str = "bi",
                    max_length: int = 128):
    """One pass over a task's examples in batches of similar length (little padding), in the
    order of :func:`length_order`; :func:`predict_rows` puts predictions back in row order."""
    from .data.batching import collate

    examples = [data.examples[i] for i in length_order(data.examples)]
    for i in range(0, len(examples), batch_size):
        yield collate(examples[i:i + batch_size], data.task, tokenizer,
                      pair_encoding=pair_encoding, max_length=max_length)
