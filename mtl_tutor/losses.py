"""Losses: each task's own loss, and auxiliary losses added to it with a weight.

Task losses, chosen per task by name (:class:`TaskLoss`):

- "cross-entropy": ``-log softmax(z)_y`` (SST, CFIMDB);
- "bce": ``-(y log s(z) + (1-y) log(1-s(z)))``, s the sigmoid, on one logit (Quora);
- "mse": ``(f - y)^2`` (STS);
- "huber": ``(f - y)^2 / 2`` where ``|f - y| <= delta``, else ``delta (|f - y| - delta / 2)``
  (Huber 1964; the CS224N OptimusBERT report trains STS with it). Each averages over the batch.

Auxiliary losses on bi-encoded pairs (their pooled embeddings u, v):

- "mnrl": multiple negatives ranking (:func:`multiple_negatives_ranking_loss`) over the
  positive pairs of the batch (:class:`PositivePairs`);
- "triplet": a margin triplet loss (:func:`triplet_loss`) with the hardest in-batch negative.

SMART's smoothness regulariser and Bregman proximal point term live in :mod:`mtl_tutor.smart`;
:func:`smoothness_divergence` here is the divergence they both use.
"""

from __future__ import annotations

import inspect

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


class PositivePairs:
    """Which pairs of a batch are positives at an epoch: ``label / divisor >= threshold(epoch)``,
    ``threshold(epoch) = start + step * epoch`` (epoch counted from 0).

    Presets (:data:`POSITIVE_PAIRS`): the CS224N OptimusBERT report's STS schedules, label
    threshold 4.4 rising by 0.05 per epoch ("sts-label") and the same on the 0-1 cosine scale
    of label / 5, 0.8 rising by 0.02 per epoch ("sts-cosine"); Quora duplicates, label 1
    ("duplicates").
    """

    def __init__(self, start: float, step: float = 0.0, divisor: float = 1.0):
        if divisor <= 0:
            raise ValueError(f"divisor must be > 0, got {divisor}")
        self.start, self.step, self.divisor = float(start), float(step), float(divisor)

    def threshold(self, epoch: int) -> float:
        return self.start + self.step * epoch

    def mask(self, labels: Tensor, epoch: int) -> Tensor:
        """(B,) True at the positive pairs."""
        return labels.float() / self.divisor >= self.threshold(epoch) - 1e-9

    def __repr__(self) -> str:
        return f"PositivePairs(start={self.start}, step={self.step}, divisor={self.divisor})"


POSITIVE_PAIRS = {"sts-label": (4.4, 0.05, 1.0), "sts-cosine": (0.8, 0.02, 5.0),
                  "duplicates": (1.0, 0.0, 1.0)}
DEFAULT_POSITIVES = {"score": "sts-label", "binary": "duplicates"}


def positive_pairs(name: str | None, label: str) -> PositivePairs:
    """The preset ``name``, or the default for the task's label kind when None."""
    if label not in DEFAULT_POSITIVES:
        raise ValueError(f"positive pairs need a pair task with 'score' or 'binary' labels, "
                         f"got {label!r}")
    name = name or DEFAULT_POSITIVES[label]
    if name not in POSITIVE_PAIRS:
        raise ValueError(f"positives must be one of {sorted(POSITIVE_PAIRS)}, got {name!r}")
    return PositivePairs(*POSITIVE_PAIRS[name])


class RankingLoss:
    """An auxiliary loss on the positive pairs (u_i, v_i) of a bi-encoded batch.

    kind: "mnrl" or "triplet". weight: its factor in the task's loss. scale: MNRL's cosine scale.
    margin: the triplet margin. positives: a :data:`POSITIVE_PAIRS` preset (None: the task's
    default). With fewer than two positives in a batch there are no negatives and it is 0.
    The triplet negative of anchor u_i is the closest v_j (j != i) among the positives.
    """

    needs_pair = True

    def __init__(self, kind: str, label: str, weight: float = 1.0, scale: float = 20.0,
                 margin: float = 5.0, positives: str | None = None):
        if kind not in ("mnrl", "triplet"):
            raise ValueError(f"kind must be 'mnrl' or 'triplet', got {kind!r}")
        for name, value in (("weight", weight), ("scale", scale), ("margin", margin)):
            if value <= 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        self.kind, self.weight, self.scale, self.margin = kind, weight, scale, margin
        self.positives = positive_pairs(positives, label)

    def __call__(self, model, batch, embeddings: tuple[Tensor, ...], output: Tensor) -> Tensor:
        u, v = embeddings
        keep = self.positives.mask(batch.labels, model.epoch)
        if int(keep.sum()) < 2:
            return u.new_zeros(())
        u, v = u[keep], v[keep]
        if self.kind == "mnrl":
            return multiple_negatives_ranking_loss(u, v, self.scale)
        distances = torch.cdist(u, v).detach()  # (n, n)
        distances.fill_diagonal_(float("inf"))
        return triplet_loss(u, v, v[distances.argmin(1)], self.margin)

    def __repr__(self) -> str:
        return (f"RankingLoss({self.kind!r}, weight={self.weight}, scale={self.scale}, "
                f"margin={self.margin}, positives={self.positives})")


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
