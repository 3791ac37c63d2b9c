"""Losses against direct formulas; positive-pair rules and in-batch negatives on hand-built
batches; the divergences SMART uses."""

import json
import math

import pytest
import torch

from mtl_tutor.losses import (
    EmbeddingCosineThreshold,
    LabelThreshold,
    RankingLoss,
    TaskLoss,
    candidates,
    multiple_negatives_ranking_loss,
    positive_pairs,
    smoothness_divergence,
    symmetric_kl,
    triplet_loss,
)
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.train import train

g = torch.Generator().manual_seed(0)
Z = torch.randn(6, 5, generator=g)
Y_CLASS = torch.tensor([0, 4, 2, 1, 3, 0])
F1 = torch.randn(6, generator=g) * 2
Y_SCORE = torch.tensor([0.0, 5.0, 2.5, 1.0, 3.2, 4.9])
Y_BIN = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])


def test_cross_entropy_is_minus_log_softmax_of_the_label():
    expected = -torch.stack([Z[i].softmax(-1)[Y_CLASS[i]].log() for i in range(6)]).mean()
    assert TaskLoss("cross-entropy", "class")(Z, Y_CLASS) == pytest.approx(expected.item(), 1e-6)


def test_bce_is_the_bernoulli_log_likelihood_of_the_logit():
    s = torch.sigmoid(F1)
    expected = -(Y_BIN * s.log() + (1 - Y_BIN) * (1 - s).log()).mean()
    assert TaskLoss("bce", "binary")(F1, Y_BIN) == pytest.approx(expected.item(), 1e-6)


def test_mse_and_huber_follow_their_formulas():
    r = F1 - Y_SCORE
    assert TaskLoss("mse", "score")(F1, Y_SCORE) == pytest.approx((r ** 2).mean().item(), 1e-6)
    for delta in (1.0, 0.5):
        huber = torch.where(r.abs() <= delta, r ** 2 / 2, delta * (r.abs() - delta / 2)).mean()
        loss = TaskLoss("huber", "score", delta=delta)(F1, Y_SCORE)
        assert loss == pytest.approx(huber.item(), 1e-6)


@pytest.mark.parametrize("name, label, options, match", [
    ("hinge", "score", {}, "valid losses"),
    ("bce", "score", {}, "does not fit"),
    ("cross-entropy", "binary", {}, "does not fit"),
    ("mse", "score", {"delta": 1.0}, "bad options"),
    ("huber", "score", {"delta": 0.0}, "delta"),
])
def test_bad_losses_name_the_problem(name, label, options, match):
    with pytest.raises(ValueError, match=match):
        TaskLoss(name, label, **options)


def test_mnrl_is_cross_entropy_over_scaled_cosines_with_in_batch_negatives():
    a, p = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    cos = torch.tensor([[torch.nn.functional.cosine_similarity(a[i], p[j], dim=0).item()
                         for j in range(4)] for i in range(4)])
    expected = sum(-20 * cos[i, i] + torch.logsumexp(20 * cos[i], 0) for i in range(4)) / 4
    assert multiple_negatives_ranking_loss(a, p) == pytest.approx(expected.item(), 1e-5)


def test_triplet_loss_is_the_hinge_on_euclidean_distances():
    a, p, n = (torch.randn(5, 3, generator=g) for _ in range(3))
    expected = sum(max(0.0, (a[i] - p[i]).norm() - (a[i] - n[i]).norm() + 1.0)
                   for i in range(5)) / 5
    assert triplet_loss(a, p, n, margin=1.0) == pytest.approx(float(expected), 1e-6)


def test_positive_pair_thresholds_rise_each_epoch():
    label = positive_pairs("sts-label", "score")
    scaled = positive_pairs("sts-label-scaled", "score")
    cosine = positive_pairs("sts-embedding-cosine", "score")
    assert isinstance(label, LabelThreshold) and isinstance(cosine, EmbeddingCosineThreshold)
    assert [label.threshold(e) for e in range(3)] == pytest.approx([4.4, 4.45, 4.5])
    assert [scaled.threshold(e) for e in range(3)] == pytest.approx([0.8, 0.82, 0.84])
    assert [cosine.threshold(e) for e in range(3)] == pytest.approx([0.8, 0.82, 0.84])
    labels = torch.tensor([4.0, 4.4, 4.45, 4.6, 5.0])
    assert label.mask(labels, 0).tolist() == [False, True, True, True, True]
    assert label.mask(labels, 1).tolist() == [False, False, True, True, True]
    assert scaled.mask(labels, 0).tolist() == [True, True, True, True, True]  # label/5 >= 0.8
    assert scaled.mask(labels, 2).tolist() == [False, True, True, True, True]  # >= 0.84
    duplicates = positive_pairs(None, "binary")
    assert duplicates.mask(Y_BIN, 5).tolist() == Y_BIN.bool().tolist()
    with pytest.raises(ValueError, match="positives"):
        positive_pairs("all", "score")
    with pytest.raises(ValueError, match="divisor"):
        LabelThreshold(1.0, divisor=0.0)


class Epoch:
    def __init__(self, epoch):
        self.epoch = epoch


class Labels:
    def __init__(self, labels):
        self.labels = labels


def hand_mnrl(e, rows, negatives, scale=20.0):
    """mean over (anchor i, positive j) of -S_ij + log(exp S_ij + sum_{k in negatives} exp S_ik),
    S = scale * cosine, each term written out."""
    cos = torch.nn.functional.cosine_similarity
    total = 0.0
    for (i, j), negs in zip(rows, negatives):
        s = {k: scale * cos(e[i], e[k], dim=0).item() for k in (j, *negs)}
        total += -s[j] + math.log(sum(math.exp(x) for x in s.values()))
    return total / len(rows)


# A hand-built STS batch of three pairs (a_i, b_i); rows of cat([u, v]): u0 u1 u2 v0 v1 v2.
U = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
V = torch.tensor([[0.9, 0.1, 0.0],    # cos(u0, v0) = 0.994: paired in the data
                  [1.0, 0.05, 0.0],   # cos(u0, v1) = 0.999, cos(v0, v1) = 0.997: never paired
                  [0.0, 0.55, 0.835]])  # cos(u2, v2) = 0.835: positive in epochs 0 and 1
STS_LABELS = torch.tensor([1.0, 4.6, 0.5])  # the cosine rule ignores them


def test_cosine_similarity_mnrl_thresholds_the_models_embeddings_over_all_sentence_pairs():
    rule = positive_pairs("sts-embedding-cosine", "score")
    epoch0 = {tuple(p) for p in rule.pairs(STS_LABELS, U, V, 0).tolist()}
    assert epoch0 == {(0, 3), (3, 0), (0, 4), (4, 0), (3, 4), (4, 3), (2, 5), (5, 2)}
    assert {tuple(p) for p in rule.pairs(STS_LABELS, U, V, 1).tolist()} == epoch0  # 0.82
    epoch2 = {tuple(p) for p in rule.pairs(STS_LABELS, U, V, 2).tolist()}  # threshold 0.84
    assert epoch2 == epoch0 - {(2, 5), (5, 2)}
    rows = sorted(epoch0)
    pairs = torch.tensor(rows)
    keep = candidates(pairs, 6, "batch")
    negatives = [sorted(set(range(6)) - {i, j}) for i, j in rows]  # every other sentence
    for r, (_, j) in enumerate(rows):
        assert keep[r].nonzero().flatten().tolist() == sorted({j, *negatives[r]})
    assert negatives[rows.index((0, 3))] == [1, 2, 4, 5]  # u1, u2, v2: never paired with u0
    loss = RankingLoss("mnrl", "score", positives="sts-embedding-cosine")
    value = loss(Epoch(0), Labels(STS_LABELS), (U, V), None).item()
    assert value == pytest.approx(hand_mnrl(torch.cat([U, V]), rows, negatives), rel=1e-5)
    no_pairs = torch.eye(3), -torch.eye(3)  # every cosine below 0.8
    assert loss(Epoch(0), Labels(STS_LABELS), no_pairs, None).item() == 0.0


def test_label_threshold_mnrl_takes_every_other_sentence_of_the_batch_as_a_negative():
    u, v = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    labels = torch.tensor([4.5, 1.0, 4.8, 4.41])  # positives at epoch 0: pairs 0, 2, 3
    e = torch.cat([u, v])
    rows = [(0, 4), (2, 6), (3, 7)]
    batch = [sorted(set(range(8)) - {i, j}) for i, j in rows]
    mnrl = RankingLoss("mnrl", "score", positives="sts-label")
    value = mnrl(Epoch(0), Labels(labels), (u, v), None).item()
    assert value == pytest.approx(hand_mnrl(e, rows, batch), rel=1e-5)
    # Henderson et al.'s in-batch negatives: the other positives b_j only
    henderson = RankingLoss("mnrl", "score", positives="sts-label", negatives="other-positives")
    others = [[j for _, j in rows if j != jj] for _, jj in rows]
    value = henderson(Epoch(0), Labels(labels), (u, v), None).item()
    assert value == pytest.approx(hand_mnrl(e, rows, others), rel=1e-5)
    keep = torch.tensor([0, 2, 3])
    assert value == pytest.approx(multiple_negatives_ranking_loss(u[keep], v[keep]).item(), 1e-5)
    assert henderson(Epoch(3), Labels(labels), (u, v), None).item() == 0.0  # 4.55: one left
    assert mnrl(Epoch(3), Labels(labels), (u, v), None).item() > 0  # one pair, 6 negatives
    with pytest.raises(ValueError, match="label rule"):
        RankingLoss("mnrl", "score", positives="sts-embedding-cosine", negatives="other-positives")
    with pytest.raises(ValueError, match="negatives"):
        RankingLoss("mnrl", "score", negatives="all")


def test_triplet_negative_is_the_closest_candidate():
    u, v = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    labels = torch.tensor([4.5, 1.0, 4.8, 4.41])
    e = torch.cat([u, v])
    rows = [(0, 4), (2, 6), (3, 7)]
    for negatives, allowed in (
            ("batch", [sorted(set(range(8)) - {i, j}) for i, j in rows]),
            ("other-positives", [[j for _, j in rows if j != jj] for _, jj in rows])):
        nearest = [min(allowed[r], key=lambda k, i=i: (e[i] - e[k]).norm().item())
                   for r, (i, _) in enumerate(rows)]
        expected = sum(max(0.0, ((e[i] - e[j]).norm() - (e[i] - e[n]).norm()).item() + 2.0)
                       for (i, j), n in zip(rows, nearest)) / 3
        triplet = RankingLoss("triplet", "score", margin=2.0, negatives=negatives)
        assert triplet(Epoch(0), Labels(labels), (u, v), None).item() == pytest.approx(expected)


def test_symmetric_kl_and_the_smoothness_divergences_follow_their_formulas():
    p, q = Z[:3], Z[3:]
    P, Q = p.softmax(-1), q.softmax(-1)
    expected = ((P * (P / Q).log()).sum(-1) + (Q * (Q / P).log()).sum(-1)).mean()
    assert symmetric_kl(p, q) == pytest.approx(expected.item(), 1e-5)
    a, b = F1[:3], F1[3:]
    sa, sb = torch.sigmoid(a), torch.sigmoid(b)
    bern = ((sa - sb) * ((sa / sb).log() - ((1 - sa) / (1 - sb)).log())).mean()
    assert smoothness_divergence("binary", a, b) == pytest.approx(bern.item(), 1e-5)
    assert smoothness_divergence("score", a, b) == pytest.approx(((a - b) ** 2).mean().item())
    assert smoothness_divergence("class", p, p).item() == pytest.approx(0.0, abs=1e-7)


def test_task_and_auxiliary_losses_train_to_a_finite_loss(synthetic_dir, tmp_path):
    config = TrainConfig(
        backbone="tiny", data=str(synthetic_dir), out=str(tmp_path / "run"), epochs=1,
        max_steps=2, batch_size=8, max_length=32, eval_batch_size=32, progress=False,
        combiner="pcgrad", losses={"sts": {"name": "huber", "delta": 0.5}},
        aux_losses={"sts": {"mnrl": {"positives": "sts-embedding-cosine"}, "smart": {}},
                    "quora": {"triplet": {"weight": 0.5}},
                    "sst": {"smart": {"weight": 3.0}, "bregman": {}}})
    train(config)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(math.isfinite(v) for r in log for v in r["losses"].values())
