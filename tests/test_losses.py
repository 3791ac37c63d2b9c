"""Losses against direct formulas; positive-pair schedules; SMART and the Bregman teacher."""

import json
import math

import pytest
import torch

from mtl_tutor.data import TaskBatches, load_task
from mtl_tutor.data.tasks import get_task
from mtl_tutor.losses import (
    PositivePairs,
    RankingLoss,
    TaskLoss,
    multiple_negatives_ranking_loss,
    positive_pairs,
    smoothness_divergence,
    symmetric_kl,
    triplet_loss,
)
from mtl_tutor.model import MultitaskModel
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.smart import BregmanProximalPoint, SmoothnessRegulariser
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
    label, cosine = positive_pairs("sts-label", "score"), positive_pairs("sts-cosine", "score")
    assert [label.threshold(e) for e in range(3)] == pytest.approx([4.4, 4.45, 4.5])
    assert [cosine.threshold(e) for e in range(3)] == pytest.approx([0.8, 0.82, 0.84])
    labels = torch.tensor([4.0, 4.4, 4.45, 4.6, 5.0])
    assert label.mask(labels, 0).tolist() == [False, True, True, True, True]
    assert label.mask(labels, 1).tolist() == [False, False, True, True, True]
    assert cosine.mask(labels, 0).tolist() == [True, True, True, True, True]  # label/5 >= 0.8
    assert cosine.mask(labels, 2).tolist() == [False, True, True, True, True]  # >= 0.84
    duplicates = positive_pairs(None, "binary")
    assert duplicates.mask(Y_BIN, 5).tolist() == Y_BIN.bool().tolist()
    with pytest.raises(ValueError, match="positives"):
        positive_pairs("all", "score")
    with pytest.raises(ValueError, match="divisor"):
        PositivePairs(1.0, divisor=0.0)


class Epoch:
    def __init__(self, epoch):
        self.epoch = epoch


class Labels:
    def __init__(self, labels):
        self.labels = labels


def test_ranking_losses_use_only_the_positive_pairs():
    u, v = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    labels = torch.tensor([4.5, 1.0, 4.8, 4.41, 0.0, 3.0])
    keep = torch.tensor([0, 2, 3])
    mnrl = RankingLoss("mnrl", "score")
    expected = multiple_negatives_ranking_loss(u[keep], v[keep])
    assert mnrl(Epoch(0), Labels(labels), (u, v), None) == pytest.approx(expected.item())
    assert mnrl(Epoch(3), Labels(labels), (u, v), None).item() == 0.0  # threshold 4.55: one left
    triplet = RankingLoss("triplet", "score", margin=2.0)
    a, p = u[keep], v[keep]
    nearest = torch.cdist(a, p).fill_diagonal_(float("inf")).argmin(1)
    expected = triplet_loss(a, p, p[nearest], 2.0)
    assert triplet(Epoch(0), Labels(labels), (u, v), None) == pytest.approx(expected.item())


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


@pytest.fixture(scope="module")
def sst_model_and_batch(tiny_backbone, synthetic_dir):
    bert, tokenizer = tiny_backbone
    model = MultitaskModel(bert, {"sst": get_task("sst")}).eval()
    batch = next(TaskBatches(load_task(synthetic_dir, "sst", "train"), tokenizer, 8))
    return model, batch


def test_smart_is_zero_without_perturbation_and_positive_with_one(sst_model_and_batch):
    model, batch = sst_model_and_batch
    output = model(batch)
    none = SmoothnessRegulariser("class", epsilon=0.0, noise_std=0.0)
    assert none(model, batch, (), output).item() == pytest.approx(0.0, abs=1e-10)
    some = SmoothnessRegulariser("class", epsilon=1e-1, step_size=1e-1, noise_std=1e-3)
    assert some(model, batch, (), output).item() > 1e-8
    default = SmoothnessRegulariser("class")  # the paper's eps = 1e-5: tiny but not zero
    value = default(model, batch, (), output).item()
    assert 0 <= value < some(model, batch, (), output).item()
    assert torch.equal(model(batch), output)  # the perturbation is gone afterwards


def test_smart_ascent_step_increases_the_divergence(sst_model_and_batch):
    model, batch = sst_model_and_batch
    output = model(batch)
    torch.manual_seed(0)
    noise_only = SmoothnessRegulariser("class", epsilon=1e-2, ascent_steps=0, noise_std=1e-2)
    torch.manual_seed(0)
    ascended = SmoothnessRegulariser("class", epsilon=1e-2, step_size=1e-2, noise_std=1e-2)
    assert (ascended(model, batch, (), output).item()
            > noise_only(model, batch, (), output).item())


def test_bregman_teacher_starts_at_the_model_and_follows_it_by_momentum(sst_model_and_batch):
    model, batch = sst_model_and_batch
    output = model(batch)
    bregman = BregmanProximalPoint("class", momentum=0.9)
    assert bregman(model, batch, (), output).item() == pytest.approx(0.0, abs=1e-10)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05)
    try:
        assert bregman(model, batch, (), model(batch)).item() > 0
        bregman.after_optimizer_step(model)
        for name, p in model.named_parameters():
            assert torch.allclose(bregman.teacher[name], 0.9 * before[name] + 0.1 * p)
    finally:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(before[name])


def test_task_and_auxiliary_losses_train_to_a_finite_loss(synthetic_dir, tmp_path):
    config = TrainConfig(
        backbone="tiny", data=str(synthetic_dir), out=str(tmp_path / "run"), epochs=1,
        max_steps=2, batch_size=8, max_length=32, eval_batch_size=32, progress=False,
        combiner="pcgrad", losses={"sts": {"name": "huber", "delta": 0.5}},
        aux_losses={"sts": {"mnrl": {"positives": "sts-cosine"}, "smart": {}},
                    "quora": {"triplet": {"weight": 0.5}},
                    "sst": {"smart": {"weight": 3.0}, "bregman": {}}})
    train(config)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(math.isfinite(v) for r in log for v in r["losses"].values())
