"""Loss-based and learned combiners against re-derivations of their papers' formulas.

LibMTL, the reference for DWA, GradNorm, uncertainty weighting and DB-MTL, cannot be imported
with our torch (its package imports torchvision), and torchjd does not implement them, so each
is checked here against the formula written out independently.
"""

import math

import pytest
import torch
from combiner_helpers import fresh, gradient_matrix

from mtl_tutor.combiners import ColumnGroups, EpochEnd, LossesAfterStep, get_combiner
from mtl_tutor.combiners.gradattention import distinct_coordinates


def test_dwa_follows_eq_7_over_several_epochs():
    dwa = get_combiner("dwa", temperature=2.0, tasks=["a", "b", "c"])
    epochs = [[1.0, 2.0, 4.0], [0.8, 1.9, 2.0], [0.4, 1.8, 1.9], [0.3, 1.0, 1.8]]
    assert torch.equal(dwa.loss_weights(torch.ones(3)), torch.ones(3))
    for t, means in enumerate(epochs):
        dwa.on_event(EpochEnd(t, dict(zip("abc", means))))
        if t == 0:
            assert torch.equal(dwa.loss_weights(torch.ones(3)), torch.ones(3))
            continue
        ratios = [now / before for now, before in zip(means, epochs[t - 1], strict=True)]
        exps = [math.exp(r / 2.0) for r in ratios]
        expected = torch.tensor([3 * e / sum(exps) for e in exps])
        assert torch.allclose(dwa.loss_weights(torch.ones(3)), expected)


def test_uncertainty_gradients_are_those_of_kendall_loss():
    uw = get_combiner("uncertainty", tasks=["sst", "quora", "sts"],
                      kinds="classification,classification,regression")
    s = torch.tensor([0.3, -0.2, 0.5])
    with torch.no_grad():
        for value, parameter in zip(s, uw.parameters()):
            parameter.copy_(value)
    losses = torch.tensor([0.7, 1.3, 2.0], requires_grad=True)
    weights = uw.loss_weights(losses)
    (weights * losses).sum().backward()
    c = torch.tensor([1.0, 1.0, 0.5])
    kendall = c * torch.exp(-s)
    assert torch.allclose(weights.detach(), kendall)
    assert torch.allclose(losses.grad, kendall)  # what multiplies each task gradient
    grads = torch.stack([p.grad for p in uw.parameters()])
    assert torch.allclose(grads, -kendall * losses.detach() + 0.5)


def test_uncertainty_balances_weighted_losses_at_its_optimum():
    uw = get_combiner("uncertainty", tasks=["a", "b"])
    optimiser = torch.optim.SGD(uw.parameters(), lr=0.5)
    losses = torch.tensor([0.1, 10.0])
    for _ in range(300):
        optimiser.zero_grad()
        (uw.loss_weights(losses) * losses).sum().backward()
        optimiser.step()
    assert torch.allclose(uw.loss_weights(losses).detach() * losses, torch.full((2,), 0.5))


def test_uncertainty_derives_its_tasks_and_keeps_each_tasks_log_variance():
    # No task count to set: a log-variance per declared task, or per task as it first appears.
    declared = get_combiner("uncertainty", tasks=["sst", "quora", "sts"])
    assert len(declared.parameters()) == 3
    undeclared = get_combiner("uncertainty", kinds={"a": "classification", "b": "regression"})
    assert torch.allclose(undeclared.loss_weights(torch.ones(2), ["b", "a"]).detach(),
                          torch.tensor([0.5, 1.0]))
    # A step holding one task trains that task's log-variance only.
    (declared.loss_weights(torch.tensor([2.0]), ["quora"]) * 2.0).sum().backward()
    grads = {t: p.grad for t, p in declared.log_variances.items()}
    assert grads["sst"] is None and grads["sts"] is None
    assert float(grads["quora"]) == pytest.approx(-0.5 * 2.0 + 0.5)


def test_uncertainty_names_a_kinds_mismatch():
    with pytest.raises(ValueError, match="kinds"):
        get_combiner("uncertainty", tasks=["a", "b", "c"], kinds="regression,classification")
    with pytest.raises(ValueError, match="kinds"):
        get_combiner("uncertainty", kinds="regression,ranking")
    with pytest.raises(ValueError, match="kinds.*no kind for task 'c'"):
        get_combiner("uncertainty", kinds={"a": "regression"}).loss_weights(torch.ones(1), ["c"])
    with pytest.raises(ValueError, match="declare the tasks"):
        get_combiner("uncertainty", kinds="regression,classification").loss_weights(
            torch.ones(2))


def test_famo_matches_the_official_update_written_with_autograd():
    famo = get_combiner("famo", lr=0.025, gamma=0.01)
    logits = torch.zeros(3, requires_grad=True)
    reference = torch.optim.Adam([logits], lr=0.025, weight_decay=0.01)
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        before = torch.rand(3, generator=generator) + 0.5
        after = before * (0.5 + torch.rand(3, generator=generator))
        # Official loss: sum_k z_k log(L_k) / c; its gradient in L gives the loss weights.
        losses = before.clone().requires_grad_(True)
        z = torch.softmax(logits.detach(), 0)
        c = (z / (losses.detach() + 1e-8)).sum()
        (torch.log(losses + 1e-8) * z / c).sum().backward()
        assert torch.allclose(famo.loss_weights(before), losses.grad)
        famo.on_event(LossesAfterStep(dict(zip(["0", "1", "2"], after.tolist()))))
        delta = torch.log(before + 1e-8) - torch.log(after + 1e-8)
        logits.grad = torch.autograd.grad(torch.softmax(logits, 0), logits, delta)[0]
        reference.step()
        assert torch.allclose(famo.logits, logits)


def test_gradnorm_follows_algorithm_1_on_the_last_layer_group():
    gradnorm = get_combiner("gradnorm", alpha=1.5, lr=0.05, layer="last")
    gradnorm.on_event(ColumnGroups((("first", slice(0, 4)), ("last", slice(4, 10)))))
    weights = torch.ones(3, dtype=torch.float64, requires_grad=True)
    reference = torch.optim.Adam([weights], lr=0.05)
    initial = None
    for seed in range(4):
        G = gradient_matrix("random", 3, 10, 1.0, seed)
        losses = torch.tensor([1.0, 0.9, 0.5], dtype=torch.float64) * (1 - 0.1 * seed)
        d = gradnorm(G, losses)
        assert torch.allclose(d, weights.detach() @ G)
        initial = losses if initial is None else initial
        # L_grad with autograd, the target held constant.
        norms = weights * G[:, 4:].norm(dim=1)
        rates = (losses / initial) / (losses / initial).mean()
        target = (norms.mean() * rates**1.5).detach()
        reference.zero_grad()
        (norms - target).abs().sum().backward()
        reference.step()
        with torch.no_grad():
            weights.copy_(weights.clamp(min=1e-6) * 3 / weights.clamp(min=1e-6).sum())
        assert torch.allclose(gradnorm.task_weights, weights)


def test_gradnorm_without_column_groups_uses_every_column():
    G = gradient_matrix("random", 2, 6, 1.0, 0)
    whole, told = get_combiner("gradnorm"), get_combiner("gradnorm")
    told.on_event(ColumnGroups((("all", slice(0, 6)),)))
    for _ in range(3):
        assert torch.equal(whole(G, torch.ones(2)), told(G, torch.ones(2)))


def test_gradnorm_skips_a_last_group_that_no_task_reaches():
    """Heads that mean-pool leave BERT's pooler, the last group, without gradient: GradNorm
    then balances the layer below it, as if the pooler were not there."""
    groups = (("layer", slice(0, 6)), ("pooler", slice(6, 10)))
    below, skipping = get_combiner("gradnorm"), get_combiner("gradnorm")
    below.on_event(ColumnGroups(groups[:1]))
    skipping.on_event(ColumnGroups(groups))
    for seed in range(3):
        G = gradient_matrix("random", 3, 10, 1.0, seed)
        G[:, 6:] = 0
        losses = torch.tensor([1.0, 0.8, 0.5], dtype=torch.float64) ** (seed + 1)
        assert torch.equal(below(G, losses), skipping(G, losses))
    assert torch.equal(below.task_weights, skipping.task_weights)
    assert not torch.allclose(skipping.task_weights, torch.ones(3, dtype=torch.float64))


def test_gradnorm_rejects_an_unknown_layer():
    with pytest.raises(ValueError, match="layer"):
        get_combiner("gradnorm", layer="pooler").on_event(ColumnGroups((("encoder",
                                                                          slice(0, 3)),)))


def test_dbmtl_follows_its_ema_and_balancing():
    beta, sigma = 0.9, 0.5
    dbmtl = get_combiner("dbmtl", beta=beta, beta_sigma=sigma)
    momentum = torch.zeros(3, 12, dtype=torch.float64)
    for t in range(1, 5):
        G = gradient_matrix("random", 3, 12, 10.0 ** (t - 2), t)
        losses = torch.tensor([0.5, 2.0, 8.0], dtype=torch.float64) / t
        decay = beta / t**sigma
        momentum = (1 - decay) * G / (losses[:, None] + 1e-8) + decay * momentum
        norms = momentum.norm(dim=1)
        expected = (norms.max() / norms) @ momentum
        assert torch.allclose(dbmtl(G, losses), expected)


def test_rlw_draws_fresh_positive_weights_summing_to_one():
    rlw = get_combiner("rlw", seed=5)
    draws = [rlw.loss_weights(torch.ones(4)) for _ in range(3)]
    for w in draws:
        assert (w > 0).all() and torch.isclose(w.sum(), torch.tensor(1.0))
    assert not torch.equal(draws[0], draws[1])


@pytest.mark.parametrize("mode", ["report", "fixed-subset", "sketch"])
def test_gradattention_learns_a_direction_that_helps_the_worst_task(mode):
    G = gradient_matrix("random", 3, 300, 1.0, 0).float()
    G[1] = 0.2 * G[1] - G[0]  # tasks 0 and 1 conflict
    attention = fresh("gradattention", 3, 300, mode=mode, lr=1e-2, subset_size=64)
    first = mean_worst_improvement(attention, G)
    for _ in range(40):
        attention(G, torch.ones(3))
    assert mean_worst_improvement(attention, G) > first + 0.1
    assert attention.parameters() == []  # the trainer never steps the network
    assert all(p.grad is None for p in attention.network.parameters())


def mean_worst_improvement(attention, G, subsets=30):
    """min_k cos(g_k, d) on the coordinates d lives on, with the network's current weights
    (averaged over fixed random subsets in "report" mode, whose subsets change every call)."""
    generator = torch.Generator().manual_seed(5)
    supports = [None]  # every coordinate
    if attention.mode == "report":
        supports = [distinct_coordinates(G.shape[1], 64, generator) for _ in range(subsets)]
    values = []
    with torch.no_grad():
        for S in supports:
            alpha = attention.attention(attention.tokens(G, S))
            G_S = G if S is None else G[:, S]
            d = alpha @ G_S
            values.append(float((G_S @ d / (d.norm() * G_S.norm(dim=1))).min()))
    return sum(values) / len(values)


def test_gradattention_sketch_mode_is_a_signed_chunk_sum_over_one_byte_per_parameter():
    P, r = 1000, 8
    attention = fresh("gradattention", 2, P, mode="sketch", sketch_size=r)
    G = gradient_matrix("random", 2, P, 1.0, 0)
    tokens = attention.tokens(G)
    signs = attention._fixed_draw(P, G.device)
    assert signs.dtype == torch.int8 and signs.shape == (P,)  # no P x r matrix is stored
    chunks = torch.arange(P) * r // P  # chunk b holds coordinates [b P / r, (b + 1) P / r)
    dense = torch.zeros(P, r, dtype=G.dtype)
    dense[torch.arange(P), chunks] = signs.to(G.dtype)
    sketch = G @ dense
    assert torch.allclose(tokens, (sketch / sketch.norm(dim=1).max()).float(), atol=1e-6)


@pytest.mark.parametrize("mode", ["report", "fixed-subset"])
def test_gradattention_handles_fewer_coordinates_than_its_subset(mode):
    attention = fresh("gradattention", 3, 3, subset_size=16, mode=mode)
    d = attention(torch.eye(3), torch.ones(3))
    assert torch.isfinite(d).all() and d.shape == (3,)
    assert attention.tokens(torch.eye(3)).shape == (3, 16)


def test_gradattention_report_mode_on_a_wide_matrix_updates_a_fresh_subset_each_call():
    # The report's method: a new subset of subset_size coordinates at every call, the direction
    # zero outside it, the attention network reading only those entries.
    attention = get_combiner("gradattention", seed=0)
    assert attention.mode == "report"
    G = gradient_matrix("random", 3, 100_000, 1.0, 0).float()
    supports = []
    for _ in range(2):
        combination = attention.combine(G, torch.ones(3))
        support = combination.direction.nonzero().flatten()
        assert len(support) <= attention.subset_size
        assert set(support.tolist()) <= set(attention.coordinates.tolist())
        assert len(attention.coordinates) == attention.subset_size  # distinct coordinates
        with torch.no_grad():  # the weights applied are the network's on those entries
            alpha = combination.weights.float()
        S = attention.coordinates
        assert torch.allclose(combination.direction[S], alpha @ G[:, S], atol=1e-6)
        supports.append(set(support.tolist()))
    assert supports[0] != supports[1]
    assert len(supports[0] & supports[1]) < attention.subset_size // 10


def test_gradattention_report_mode_tokens_are_the_subsets_entries():
    # Changing G outside the subset changes neither the weights nor the direction.
    attention, twin = get_combiner("gradattention", seed=3), get_combiner("gradattention", seed=3)
    G = gradient_matrix("random", 2, 5000, 1.0, 1)
    d = attention(G, torch.ones(2, dtype=G.dtype))
    outside = torch.ones(5000, dtype=torch.bool)
    outside[attention.coordinates] = False
    changed = G.clone()
    changed[:, outside] *= -3.0
    assert torch.equal(twin(changed, torch.ones(2, dtype=G.dtype)), d)
    assert torch.equal(twin.coordinates, attention.coordinates)
