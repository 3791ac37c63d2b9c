"""Losses: each task's own loss, and auxiliary losses added to it with a weight.

Task losses, chosen per task by name (:class:`TaskLoss`):

- "cross-entropy": ``-log softmax(z)_y`` (SST, CFIMDB);
- "bce": ``-(y log s(z) + (1-y) log(1-s(z)))``, s the sigmoid, on one logit (Quora);
- "mse": ``(f - y)^2`` (STS);
- "huber": ``(f - y)^2 / 2`` where ``|f - y| <= delta``, else ``delta (|f - y| - delta / 2)``
  (Huber 1964; the CS224N OptimusBERT report trains STS with it). Each averages over the batch.

Auxiliary losses on bi-encoded pairs (their pooled embeddings u, v):

- "mnrl": multiple negatives ranking (:func:`in_batch_ranking_loss`) over the positive pairs
  a rule picks (:class:`LabelThreshold`, :class:`EmbeddingCosineThreshold`), every other
  sentence of the batch a negative (or Henderson et al.'s other positives; :class:`RankingLoss`);
- "triplet": a margin triplet loss (:func:`triplet_loss`) with the hardest in-batch negative.

SMART's smoothness regulariser and Bregman proximal point term live in :mod:`mtl_tutor.smart`;
:func:`smoothness_divergence` here is the divergence they both use.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor


def huber_loss(output: Tensor, labels: Tensor, delta: float = 1.0) -> Tensor:
    """Mean Huber loss: quadratic within ``delta`` of the label, linear beyond."""
    return F.huber_loss(output, labels.to(output.dtype), delta=delta)


def _cross_entropy(output: Tensor, labels: Tensor) -> Tensor:
    return F.cross_entropy(output, labels.long())


def _bce(output: Tensor, labels: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(output, labels.to(output.dtype))


def _mse(output: Tensor, labels: Tensor) -> Tensor:
    return F.mse_loss(output, labels.to(output.dtype))


TASK_LOSSES = {"cross-entropy": _cross_entropy, "bce": _bce, "mse": _mse, "huber": huber_loss}
LOSS_LABELS = {"cross-entropy": ("class",), "bce": ("binary",), "mse": ("binary", "score"),
               "huber": ("binary", "score")}  # the label kinds (TaskSpec.label) each loss fits
DEFAULT_LOSS = {"class": "cross-entropy", "binary": "bce", "score": "mse"}


class TaskLoss:
    """A task's loss by name with its options: ``TaskLoss("huber", "score", delta=0.5)``.

    name: one of ``TASK_LOSSES``. label: the task's label kind; the loss must fit it.
    """

    def __init__(self, name: str, label: str, **options):
        if name not in TASK_LOSSES:
            raise ValueError(f"unknown loss {name!r}; valid losses: {sorted(TASK_LOSSES)}")
        if label not in LOSS_LABELS[name]:
            raise ValueError(f"loss {name!r} does not fit {label!r} labels; "
                             f"use one of {[n for n, k in LOSS_LABELS.items() if label in k]}")
        fn = TASK_LOSSES[name]
        try:
            inspect.signature(fn).bind(None, None, **options)
        except TypeError as e:
            raise ValueError(f"bad options for loss {name!r}: {options} ({e})") from e
        if options.get("delta", 1.0) <= 0:
            raise ValueError(f"delta must be > 0, got {options['delta']}")
        self.name, self.options, self.fn = name, options, fn

    def __call__(self, output: Tensor, labels: Tensor) -> Tensor:
        return self.fn(output, labels, **self.options)

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"TaskLoss({self.name!r}{args})"


def multiple_negatives_ranking_loss(anchors: Tensor, positives: Tensor,
                                    scale: float = 20.0) -> Tensor:
    """Henderson et al. 2017, "Efficient Natural Language Response Suggestion for Smart Reply",
    https://arxiv.org/abs/1705.00652 (section 4.4): every other positive in the batch is a
    negative for an anchor.

        S_ij = scale * cos(a_i, p_j),   loss = mean_i [ -S_ii + log sum_j exp(S_ij) ]

    i.e. cross-entropy of row i of S against class i. scale = 20 is sentence-transformers'
    default for cosine scores. anchors, positives: (n, C) -> scalar.
    """
    scores = scale * F.normalize(anchors, dim=-1) @ F.normalize(positives, dim=-1).T  # (n, n)
    return F.cross_entropy(scores, torch.arange(len(anchors), device=anchors.device))


def triplet_loss(anchors: Tensor, positives: Tensor, negatives: Tensor,
                 margin: float = 5.0) -> Tensor:
    """Schroff et al. 2015, "FaceNet", https://arxiv.org/abs/1503.03832, eq. 1, with Euclidean
    distances (margin 5 as sentence-transformers' TripletLoss):

        loss = mean_i max(0, |a_i - p_i| - |a_i - n_i| + margin)
    """
    d_pos = (anchors - positives).norm(dim=-1)
    d_neg = (anchors - negatives).norm(dim=-1)
    return (d_pos - d_neg + margin).relu().mean()


class PositiveRule(ABC):
    """Which pairs of a bi-encoded batch are positives at an epoch (epoch counted from 0):
    ``pairs`` gives them as ordered (anchor, positive) rows into the batch's 2B sentence
    embeddings ``[u_1 .. u_B, v_1 .. v_B]``; its threshold is ``start + step * epoch``."""

    def __init__(self, start: float, step: float = 0.0):
        self.start, self.step = float(start), float(step)

    def threshold(self, epoch: int) -> float:
        return self.start + self.step * epoch

    @abstractmethod
    def pairs(self, labels: Tensor, u: Tensor, v: Tensor, epoch: int) -> Tensor:
        """(m, 2) long tensor of (anchor, positive) indices into ``cat([u, v])``."""


class LabelThreshold(PositiveRule):
    """The data's pair (a_i, b_i) is positive when ``label_i / divisor >= threshold(epoch)``;
    its anchor is a_i (row i) and its positive b_i (row B + i)."""

    def __init__(self, start: float, step: float = 0.0, divisor: float = 1.0):
        super().__init__(start, step)
        if divisor <= 0:
            raise ValueError(f"divisor must be > 0, got {divisor}")
        self.divisor = float(divisor)

    def mask(self, labels: Tensor, epoch: int) -> Tensor:
        """(B,) True at the positive pairs."""
        return labels.float() / self.divisor >= self.threshold(epoch) - 1e-9

    def pairs(self, labels: Tensor, u: Tensor, v: Tensor, epoch: int) -> Tensor:
        i = self.mask(labels, epoch).nonzero().flatten()
        return torch.stack([i, i + len(u)], dim=1)

    def __repr__(self) -> str:
        return f"LabelThreshold(start={self.start}, step={self.step}, divisor={self.divisor})"


class EmbeddingCosineThreshold(PositiveRule):
    """Any two sentences of the batch, paired in the data or not, are positive when the cosine of
    the model's embeddings reaches ``threshold(epoch)``: every ordered pair (i, j), i != j, of
    the 2B sentences with ``cos(e_i, e_j) >= threshold``. The labels play no part."""

    def pairs(self, labels: Tensor, u: Tensor, v: Tensor, epoch: int) -> Tensor:
        e = F.normalize(torch.cat([u, v]).detach(), dim=-1)
        cos = e @ e.T  # (2B, 2B)
        cos.fill_diagonal_(-math.inf)
        return (cos >= self.threshold(epoch) - 1e-9).nonzero()

    def __repr__(self) -> str:
        return f"EmbeddingCosineThreshold(start={self.start}, step={self.step})"


POSITIVE_PAIRS = {
    "sts-label": (LabelThreshold, (4.4, 0.05)),
    "sts-label-scaled": (LabelThreshold, (0.8, 0.02, 5.0)),
    "sts-embedding-cosine": (EmbeddingCosineThreshold, (0.8, 0.02)),
    "duplicates": (LabelThreshold, (1.0,)),
}
DEFAULT_POSITIVES = {"score": "sts-label", "binary": "duplicates"}


def positive_pairs(name: str | None, label: str) -> PositiveRule:
    """The preset ``name``, or the default for the task's label kind when None."""
    if label not in DEFAULT_POSITIVES:
        raise ValueError(f"positive pairs need a pair task with 'score' or 'binary' labels, "
                         f"got {label!r}")
    name = name or DEFAULT_POSITIVES[label]
    if name not in POSITIVE_PAIRS:
        raise ValueError(f"positives must be one of {sorted(POSITIVE_PAIRS)}, got {name!r}")
    rule, args = POSITIVE_PAIRS[name]
    return rule(*args)


NEGATIVES = ("batch", "other-positives")


def candidates(pairs: Tensor, n: int, negatives: str) -> Tensor:
    """(m, n) True where embedding k is a candidate for row (i, j) of ``pairs``: the positive j
    and the row's negatives. "batch": every embedding but the anchor i. "other-positives": the
    positives of all rows (Henderson et al.'s in-batch negatives)."""
    keep = torch.ones(len(pairs), n, dtype=torch.bool, device=pairs.device)
    if negatives == "batch":
        keep[torch.arange(len(pairs), device=pairs.device), pairs[:, 0]] = False
    else:
        keep[:] = False
        keep[:, pairs[:, 1]] = True
    return keep


def in_batch_ranking_loss(embeddings: Tensor, pairs: Tensor, keep: Tensor,
                          scale: float = 20.0) -> Tensor:
    """MNRL of positive rows (i, j) of ``pairs`` against the candidates ``keep`` (m, n):

        S_ik = scale * cos(e_i, e_k),   loss = mean_(i,j) [ -S_ij + log sum_{k: keep} exp(S_ik) ]

    embeddings: (n, C). With ``keep`` = every embedding but the anchor this is the CS224N
    OptimusBERT report's loss, in which every other sentence of the batch is a negative.
    """
    e = F.normalize(embeddings, dim=-1)
    scores = scale * e[pairs[:, 0]] @ e.T  # (m, n)
    return F.cross_entropy(scores.masked_fill(~keep, -math.inf), pairs[:, 1])


class RankingLoss:
    """An auxiliary ranking loss on a bi-encoded batch of B pairs, embeddings u and v.

    kind: "mnrl" or "triplet". weight: its factor in the task's loss. scale: MNRL's cosine scale.
    margin: the triplet margin. positives: a :data:`POSITIVE_PAIRS` preset (None: the task's
    default), the rule that picks the (anchor, positive) rows:

    - "sts-embedding-cosine": the CS224N OptimusBERT report's Cosine-Similarity MNRL: any two
      sentences of the batch whose embeddings' cosine reaches 0.8 + 0.02 * epoch;
    - "sts-label": the report's label schedule, STS pairs with label >= 4.4 + 0.05 * epoch;
    - "sts-label-scaled": pairs with label / 5 >= 0.8 + 0.02 * epoch (the cosine schedule's
      numbers applied to the labels);
    - "duplicates": Quora pairs labelled duplicate.

    negatives: "batch" (the report's: every sentence embedding of the batch other than the
    anchor and its positive, sentences of unpaired or dissimilar pairs included) or
    "other-positives" (Henderson et al. 2017's in-batch negatives: the positives of the other
    rows; label rules only). The triplet negative of a row is its closest negative (Euclidean).
    Without a positive row (or, for "other-positives", with fewer than two) the loss is 0.
    """

    needs_pair = True

    def __init__(self, kind: str, label: str, weight: float = 1.0, scale: float = 20.0,
                 margin: float = 5.0, positives: str | None = None, negatives: str = "batch"):
        if kind not in ("mnrl", "triplet"):
            raise ValueError(f"kind must be 'mnrl' or 'triplet', got {kind!r}")
        for name, value in (("weight", weight), ("scale", scale), ("margin", margin)):
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
        self.kind, self.weight, self.scale, self.margin = kind, weight, scale, margin
        self.positives, self.negatives = positive_pairs(positives, label), negatives
        if negatives == "other-positives" and not isinstance(self.positives, LabelThreshold):
            raise ValueError(f"negatives='other-positives' needs positive pairs of the data (a "
                             f"label rule), not {self.positives!r}")

    def __call__(self, model, batch, embeddings: tuple[Tensor, ...], output: Tensor) -> Tensor:
        u, v = embeddings
        pairs = self.positives.pairs(batch.labels, u, v, model.epoch)
        if len(pairs) < (2 if self.negatives == "other-positives" else 1):
            return u.new_zeros(())
        e = torch.cat([u, v])
        keep = candidates(pairs, len(e), self.negatives)
        if self.kind == "mnrl":
            return in_batch_ranking_loss(e, pairs, keep, self.scale)
        keep[torch.arange(len(pairs), device=e.device), pairs[:, 1]] = False  # negatives only
        pairs, keep = pairs[keep.any(1)], keep[keep.any(1)]
        if not len(pairs):
            return u.new_zeros(())
        distances = torch.cdist(e[pairs[:, 0]], e).detach()  # (m, n)
        nearest = distances.masked_fill(~keep, math.inf).argmin(1)
        return triplet_loss(e[pairs[:, 0]], e[pairs[:, 1]], e[nearest], self.margin)

    def __repr__(self) -> str:
        return (f"RankingLoss({self.kind!r}, weight={self.weight}, scale={self.scale}, "
                f"margin={self.margin}, positives={self.positives}, "
                f"negatives={self.negatives!r})")


def symmetric_kl(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    """KL(p || q) + KL(q || p) of two softmax distributions, averaged over the batch."""
    log_p, log_q = p_logits.log_softmax(-1), q_logits.log_softmax(-1)
    return ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(-1).mean()


def smoothness_divergence(label: str, a: Tensor, b: Tensor) -> Tensor:
    """SMART's l_s between two outputs of the same inputs (Jiang et al. 2020, section 3.1):
    symmetric KL of the class distributions ("class"), of the Bernoulli distributions given by
    the logits ("binary"), squared difference of the scores ("score")."""
    if label == "class":
        return symmetric_kl(a, b)
    if label == "binary":
        zero = torch.zeros_like(a)
        return symmetric_kl(torch.stack([zero, a], -1), torch.stack([zero, b], -1))
    return F.mse_loss(a, b)
