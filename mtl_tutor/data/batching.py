"""Turn a list of examples into one padded batch of token ids.

Padding is dynamic: each batch is padded to its own longest sequence (truncated to
``max_length``), not to a fixed length, so short batches cost little.

Pairs are encoded one of two ways (Reimers & Gurevych 2019, "Sentence-BERT",
https://arxiv.org/abs/1908.10084, compare the two):
- "bi" (bi-encoder): each sentence on its own, ``input_ids_a`` and ``input_ids_b``; the model
  embeds each and compares the embeddings (e.g. cosine similarity for STS);
- "cross" (cross-encoder, as in BERT's own GLUE recipe, Devlin et al. 2019,
  https://arxiv.org/abs/1810.04805): one sequence ``[CLS] a [SEP] b [SEP]`` with
  ``token_type_ids`` 0 over ``[CLS] a [SEP]`` and 1 over ``b [SEP]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .io import Example
from .tasks import TaskSpec

PAIR_ENCODINGS = ("bi", "cross")


@dataclass
class Batch:
    """One batch of one task.

    inputs: single: input_ids, attention_mask; bi pair: input_ids_a, attention_mask_a,
      input_ids_b, attention_mask_b; cross pair: input_ids, attention_mask, token_type_ids.
      All (B, T) long tensors.
    labels: (B,) long for "class" tasks, float for "binary" and "score" tasks; None without labels.
    """

    task: str
    inputs: dict[str, Tensor]
    labels: Tensor | None
    ids: list[str]

    def to(self, device: torch.device | str) -> Batch:
        """The same batch with every tensor on ``device``."""
        labels = None if self.labels is None else self.labels.to(device)
        inputs = {k: v.to(device) for k, v in self.inputs.items()}
        return Batch(self.task, inputs, labels, self.ids)

    def __len__(self) -> int:
        return len(self.ids)


def check_pair_encoding(pair_encoding: str) -> str:
    if pair_encoding not in PAIR_ENCODINGS:
        raise ValueError(f"pair_encoding must be one of {', '.join(PAIR_ENCODINGS)}, "
                         f"got {pair_encoding!r}")
    return pair_encoding


def batch_labels(examples: Sequence[Example], task: TaskSpec) -> Tensor | None:
    """The labels as a tensor, or None when no example has one."""
    labels = [e.label for e in examples]
    if all(label is None for label in labels):
        return None
    if any(label is None for label in labels):
        raise ValueError(f"task {task.name!r}: a batch mixes labelled and unlabelled examples")
    dtype = torch.long if task.label == "class" else torch.float32
    return torch.tensor(labels, dtype=dtype)


def collate(examples: Sequence[Example], task: TaskSpec, tokenizer, *, pair_encoding: str = "bi",
            max_length: int = 128) -> Batch:
    """Tokenise ``examples`` of ``task`` into a :class:`Batch` padded to its longest sequence.

    tokenizer: a ``transformers.BertTokenizerFast``.
    """
    check_pair_encoding(pair_encoding)
    if not examples:
        raise ValueError("collate needs at least one example")
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")

    def encode(*texts: list[str]) -> dict[str, Tensor]:
        return tokenizer(*texts, padding="longest", truncation=True, max_length=max_length,
                         return_tensors="pt")

    text_a = [e.text_a for e in examples]
    if task.kind == "single":
        enc = encode(text_a)
        inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    elif pair_encoding == "cross":
        enc = encode(text_a, [e.text_b for e in examples])
        inputs = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    else:
        enc_a, enc_b = encode(text_a), encode([e.text_b for e in examples])
        inputs = {"input_ids_a": enc_a["input_ids"], "attention_mask_a": enc_a["attention_mask"],
                  "input_ids_b": enc_b["input_ids"], "attention_mask_b": enc_b["attention_mask"]}
    return Batch(task.name, inputs, batch_labels(examples, task), [e.id for e in examples])
