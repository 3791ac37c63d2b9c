"""The exercise checkers accept the right answer, reject wrong ones and say why."""

import doctest
import math

import pytest
import torch
import torch.nn.functional as F

import mtl_tutor.exercises as exercises
from mtl_tutor.data.tasks import MULTITASK, get_task
from mtl_tutor.exercises import (
    check_adamw_step,
    check_attention,
    check_best_combiner,
    check_conflict_fraction,
    check_gradattention_direction,
    check_gradient_matrix_shape,
    check_gradvac_direction,
    check_intervention_count,
    check_overall_score,
    check_pcgrad_direction,
    gradvac_direction,
)
from mtl_tutor.model import MultitaskModel
from mtl_tutor.run_log import StepRecord

CONFLICTING = torch.tensor([[1.0, 0.0, 0.5], [-1.0, 1.0, 0.0]])


def test_docstring_examples_run():
    assert doctest.testmod(exercises).failed == 0


def test_overall_score(capsys):
    metrics = {"sst_acc": 0.5, "para_acc": 0.75, "sts_pearson": 0.2}
    assert check_overall_score(metrics, (0.5 + 0.75 + 0.6) / 3)
    assert not check_overall_score(metrics, (0.5 + 0.75 + 0.2) / 3)
    assert not check_overall_score(metrics, "0.6")
    out = capsys.readouterr().out
    assert out.count("Right:") == 1 and out.count("Not yet:") == 2 and "Hint" in out


def test_gradient_matrix_shape(tiny_backbone, capsys):
    bert, _ = tiny_backbone
    model = MultitaskModel(bert, {t: get_task(t) for t in MULTITASK})
    P = sum(p.numel() for p in bert.parameters())
    assert check_gradient_matrix_shape(model, MULTITASK, (3, P))
    all_params = sum(p.numel() for p in model.parameters())
    assert not check_gradient_matrix_shape(model, MULTITASK, (3, all_params))
    assert not check_gradient_matrix_shape(model, MULTITASK, (P, 3))
    assert not check_gradient_matrix_shape(model, MULTITASK, 3)
    out = capsys.readouterr().out
    assert "heads keep their own gradients" in out and "number of tasks" in out


def test_attention_against_a_hand_written_softmax():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 5, 8).unbind(0)  # (B, nh, T, hs) each
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]).bool()
    scores = q @ k.transpose(-2, -1) / math.sqrt(8)
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    assert check_attention(q, k, v, mask, scores.softmax(-1) @ v)
    unmasked = (q @ k.transpose(-2, -1) / math.sqrt(8)).softmax(-1) @ v
    assert not check_attention(q, k, v, mask, unmasked)
    assert not check_attention(q, k, v, mask, (scores.softmax(-1) @ v)[0])
    assert check_attention(q, k, v, None, unmasked)
    with pytest.raises(ValueError, match="q, k, v"):
        check_attention(q[0], k, v, mask, unmasked)


def test_adamw_step_against_the_first_step_formula():
    p, g = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.1, 0.3, -0.2])
    lr, (b1, b2), eps, wd = 1e-2, (0.9, 0.999), 1e-6, 0.1
    m, v = (1 - b1) * g, (1 - b2) * g**2
    stepped = p - lr * math.sqrt(1 - b2) / (1 - b1) * m / (v.sqrt() + eps)
    decayed = stepped * (1 - lr * wd)
    assert check_adamw_step(p, g, decayed, lr=lr, weight_decay=wd)
    assert not check_adamw_step(p, g, stepped, lr=lr, weight_decay=wd)
    assert not check_adamw_step(p, g, p - lr * g, lr=lr)


def test_pcgrad_direction_for_two_tasks():
    g1, g2 = CONFLICTING
    inner = float(g1 @ g2)
    assert inner < 0
    d = (g1 - inner / float(g2 @ g2) * g2) + (g2 - inner / float(g1 @ g1) * g1)
    assert check_pcgrad_direction(CONFLICTING, d)
    assert not check_pcgrad_direction(CONFLICTING, g1 + g2)
    assert check_pcgrad_direction(CONFLICTING.abs(), CONFLICTING.abs().sum(0))  # no conflict
    with pytest.raises(ValueError, match="two task gradients"):
        check_pcgrad_direction(torch.ones(3, 2), torch.ones(2))


def log_line(step, cosines, changed):
    """One line of log.jsonl, as ``json.loads`` reads it."""
    return {"step": step, "epoch": 0, "lr": 1e-5, "losses": {"a": 1.0, "b": 1.0, "c": 1.0},
            "cosines": cosines, "conflict": min(cosines.values()) < 0, "changed": changed,
            "time": 0.1 * step}


def test_conflict_fraction_and_intervention_count():
    records = [
        log_line(0, {"a/b": 0.2, "a/c": -0.1}, 0.3),
        log_line(1, {"a/b": 0.2, "a/c": 0.1}, 0.0),
        log_line(2, {"a/b": -0.5, "a/c": -0.1}, 1e-9),
        log_line(3, {"a/b": 0.4, "a/c": 0.3}, 0.0),
    ]
    assert check_conflict_fraction(records, 0.5)
    assert check_conflict_fraction([StepRecord.from_dict(r) for r in records], 0.5)
    assert not check_conflict_fraction(records, 0.75)
    assert check_intervention_count(records, 1)
    assert not check_intervention_count(records, 2)
    assert not check_intervention_count(records, 1.0)
    with pytest.raises(ValueError, match="cosines"):
        check_conflict_fraction([{"step": 0, "epoch": 0, "losses": {"a": 1.0}}], 0.0)


def test_gradvac_direction_reaches_the_target_cosine():
    target = 0.3
    g1, g2 = CONFLICTING.double()
    phi = float(F.cosine_similarity(g1, g2, dim=0))
    root_phi, root_t = math.sqrt(1 - phi**2), math.sqrt(1 - target**2)

    def corrected(a, b):
        return a + a.norm() * (target * root_phi - phi * root_t) / (b.norm() * root_t) * b

    c1, c2 = corrected(g1, g2), corrected(g2, g1)
    assert float(F.cosine_similarity(c1, g2, dim=0)) == pytest.approx(target)
    assert check_gradvac_direction(CONFLICTING, target, c1 + c2)
    assert torch.allclose(gradvac_direction(CONFLICTING, target), c1 + c2)
    assert not check_gradvac_direction(CONFLICTING, target, CONFLICTING.sum(0))
    with pytest.raises(ValueError, match="target"):
        check_gradvac_direction(CONFLICTING, 1.0, c1 + c2)


def test_gradattention_direction_does_not_train_the_combiner():
    from mtl_tutor.combiners import get_combiner

    combiner = get_combiner("gradattention", subset_size=3, mode="fixed-subset")
    before = [p.clone() for p in combiner.network.parameters()]
    alpha = combiner.attention(combiner.tokens(CONFLICTING)).detach()
    assert check_gradattention_direction(combiner, CONFLICTING, alpha @ CONFLICTING)
    assert not check_gradattention_direction(combiner, CONFLICTING, CONFLICTING.mean(0) * 3)
    assert all(torch.equal(a, b) for a, b in zip(before, combiner.network.parameters()))


def test_gradattention_direction_in_the_reports_mode_lives_on_the_last_subset():
    from mtl_tutor.combiners import get_combiner

    G = torch.randn(2, 50, generator=torch.Generator().manual_seed(0))
    combiner = get_combiner("gradattention", subset_size=5)
    combiner(G, torch.ones(2))  # draws a subset
    S = combiner.coordinates
    alpha = combiner.attention(combiner.tokens(G, S)).detach()
    d = torch.zeros(50)
    d[S] = alpha @ G[:, S]
    assert check_gradattention_direction(combiner, G, d)
    assert not check_gradattention_direction(combiner, G, alpha @ G)


def test_best_combiner(capsys):
    results = [{"name": "sum", "conflict": 0.0, "overall": 0.6},
               {"name": "pcgrad", "conflict": 0.0, "overall": 0.5},
               {"name": "sum", "conflict": 1.0, "overall": 0.4},
               {"name": "pcgrad", "conflict": 1.0, "overall": 0.45}]
    assert check_best_combiner(results, 0.0, "sum")
    assert check_best_combiner(results, 1.0, "pcgrad")
    assert not check_best_combiner(results, 1.0, "sum")
    assert not check_best_combiner(results, 1.0, "mgda")
    assert "not among the combiners run" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no results at conflict 0.5"):
        check_best_combiner(results, 0.5, "sum")


def test_an_unanswered_exercise_says_so(capsys):
    assert not check_pcgrad_direction(CONFLICTING, None)
    assert not check_best_combiner([], 0.0, None)
    assert capsys.readouterr().out.count("No answer yet") == 2


def test_cosine_similarity_score():
    from mtl_tutor.exercises import check_cosine_similarity_score

    u = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    v = torch.tensor([[1.0, 1.0], [2.0, 2.0], [-1.0, 0.2]])
    cos = F.cosine_similarity(u, v, dim=-1)
    assert check_cosine_similarity_score(u, v, 5 * cos.clamp_min(0))
    assert not check_cosine_similarity_score(u, v, 5 * cos)
    assert not check_cosine_similarity_score(u, v, cos.clamp_min(0))


def test_annealed_probabilities():
    from mtl_tutor.exercises import check_annealed_probabilities

    sizes = {"sst": 8000, "quora": 14214, "sts": 5500}
    n = torch.tensor(list(sizes.values()), dtype=torch.float64)
    assert check_annealed_probabilities(sizes, 0, 3, n / n.sum())
    alpha = 1 - 0.8 * 2 / 2
    assert check_annealed_probabilities(sizes, 2, 3, n**alpha / (n**alpha).sum())
    assert not check_annealed_probabilities(sizes, 2, 3, n / n.sum())
    assert not check_annealed_probabilities(sizes, 1, 3, [1 / 3, 1 / 3])


def test_pal_parameter_count():
    from mtl_tutor.exercises import check_pal_parameter_count

    C, S, L = 64, 16, 2
    count = (C * S + S) + (S * C + C) + L * (3 * S * S + 3 * S)  # V^E, V^D with biases, g^l
    assert check_pal_parameter_count(C, S, 4, L, count)
    assert not check_pal_parameter_count(C, S, 4, L, 2 * C * S + L * (3 * S * S + 3 * S))
    assert not check_pal_parameter_count(C, S, 4, L, float(count))


def test_symmetric_kl_and_mnrl():
    from mtl_tutor.exercises import check_mnrl_loss, check_symmetric_kl

    torch.manual_seed(0)
    p, q = torch.randn(2, 4, 5).unbind(0)
    P, Q = p.softmax(-1), q.softmax(-1)
    kl = ((P * (P / Q).log()).sum(-1) + (Q * (Q / P).log()).sum(-1)).mean()
    assert check_symmetric_kl(p, q, kl)
    assert not check_symmetric_kl(p, q, (P * (P / Q).log()).sum(-1).mean())
    a, b = torch.randn(2, 6, 8).unbind(0)
    scores = 20 * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
    mnrl = (-scores.diagonal() + scores.logsumexp(-1)).mean()
    assert check_mnrl_loss(a, b, mnrl)
    assert not check_mnrl_loss(a, b, F.cross_entropy(a @ b.T, torch.arange(6)))
