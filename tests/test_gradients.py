"""The flat per-task gradient buffer and the conflict statistics."""

import pytest
import torch

from mtl_tutor.combiners import ColumnGroups, get_combiner
from mtl_tutor.combiners.base import gramian_of
from mtl_tutor.data import MULTITASK, TaskBatches, get_task, load_task
from mtl_tutor.gradients import (
    TaskGradients,
    conflict_statistics,
    cosine_matrix,
    gradients_with_gramian,
    layer_group,
    logged_gramian,
)
from mtl_tutor.model import MultitaskModel
from mtl_tutor.run_log import StepRecord


def make_model(tiny_backbone):
    bert, tokenizer = tiny_backbone
    torch.manual_seed(0)
    model = MultitaskModel(bert, {t: get_task(t) for t in MULTITASK})
    model.eval()  # no dropout: gradients comparable across two computations
    return model, tokenizer


def batches(synthetic_dir, tokenizer):
    return [next(TaskBatches(load_task(synthetic_dir, t, "train"), tokenizer, 8, seed=0))
            for t in MULTITASK]


def test_rows_of_G_are_each_tasks_own_gradient(tiny_backbone, synthetic_dir):
    model, tokenizer = make_model(tiny_backbone)
    named = list(model.bert.named_parameters())
    params = [p for _, p in named]
    grads = TaskGradients(params, 3, [n for n, _ in named])
    bs = batches(synthetic_dir, tokenizer)
    for k, b in enumerate(bs):
        grads.capture(k)
        model.loss(b).backward()
    for k, b in enumerate(bs):
        expected = torch.autograd.grad(model.loss(b), params, allow_unused=True)
        flat = torch.cat([(e if e is not None else torch.zeros_like(p)).flatten()
                          for e, p in zip(expected, params)])
        torch.testing.assert_close(grads.G[k], flat, rtol=1e-5, atol=1e-7)


def test_backward_writes_into_the_buffer_without_copies(tiny_backbone):
    bert, _ = tiny_backbone
    params = list(bert.parameters())
    grads = TaskGradients(params, 2)
    grads.capture(1)
    assert all(p.grad.data_ptr() >= grads.G[1].data_ptr() for p in params)
    assert all(p.grad.data_ptr() < grads.G[1].data_ptr() + grads.G[1].numel() * 4 for p in params)


def test_write_direction_makes_d_every_parameters_gradient(tiny_backbone):
    bert, _ = tiny_backbone
    params = list(bert.parameters())
    grads = TaskGradients(params, 2)
    d = torch.arange(grads.num_params, dtype=torch.float32)
    grads.write_direction(d)
    torch.testing.assert_close(torch.cat([p.grad.flatten() for p in params]), d)


def test_layer_slices_cover_G_contiguously_in_bert_groups(tiny_backbone):
    bert, _ = tiny_backbone
    named = list(bert.named_parameters())
    grads = TaskGradients([p for _, p in named], 1, [n for n, _ in named])
    names = [g for g, _ in grads.layer_slices]
    assert names == ["embeddings", "layer.0", "layer.1", "pooler"]
    starts = [s.start for _, s in grads.layer_slices]
    stops = [s.stop for _, s in grads.layer_slices]
    assert starts[0] == 0 and stops[-1] == grads.num_params and starts[1:] == stops[:-1]
    assert layer_group("encoder.layer.11.output.dense.weight") == "layer.11"


def test_conflict_statistics_on_a_known_geometry():
    G = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    d = G.sum(0)
    stats = conflict_statistics(G, d, ["a", "b", "c"], [("x", slice(0, 1)), ("y", slice(1, 3))])
    assert stats["conflict"] is True
    assert abs(stats["cosines"]["a/b"] + 2 ** -0.5) < 1e-6
    assert stats["cosines"]["a/c"] == 0.0
    assert stats["changed"] == 0.0
    assert abs(stats["grad_norms"]["c"] - 2.0) < 1e-6
    assert stats["layer_cosines"]["x"]["a/b"] == -1.0


@pytest.mark.parametrize(("name", "options"), [
    ("pcgrad", {}), ("gradvac", {}), ("gradvac", {"per_group": True}), ("gradattention", {}),
    ("gradattention", {"mode": "sketch"}), ("mgda", {}), ("graddrop", {}), ("uncertainty", {}),
])
def test_statistics_from_a_combination_equal_those_from_G(name, options):
    """The Gramian and change a combiner returns give the statistics that G and d give."""
    G = torch.randn(3, 4000, generator=torch.Generator().manual_seed(1))
    G[1] -= 1.5 * G[0]  # a conflict, so that the combiners move away from the sum
    combiner = get_combiner(name, seed=0, **options)
    combiner.on_event(ColumnGroups((("a", slice(0, 1500)), ("b", slice(1500, 4000)))))
    combination = combiner.combine(G, torch.ones(3))
    tasks = ["a", "b", "c"]
    reused = conflict_statistics(G, combination.direction, tasks, combination=combination)
    direct = conflict_statistics(G, combination.direction, tasks)
    assert reused["changed"] > 0.01
    assert reused["conflict"] == direct["conflict"]
    for key in ("changed", "cosines", "grad_norms"):
        assert reused[key] == pytest.approx(direct[key], rel=1e-5, abs=1e-6), key


def test_statistics_log_each_tasks_weight_and_which_gradients_were_altered():
    G = torch.tensor([[1.0, 0.0], [-1.0, 1.0], [0.0, 0.5]], dtype=torch.float64)
    tasks = ["sst", "quora", "sts"]
    pcgrad = get_combiner("pcgrad", seed=0).combine(G, torch.ones(3, dtype=G.dtype), tasks)
    stats = conflict_statistics(G, pcgrad.direction, tasks, combination=pcgrad)
    # sst and quora conflict and are projected; sts agrees with both and is left alone
    assert stats["altered"] == {"sst": True, "quora": True, "sts": False}
    assert torch.allclose(torch.tensor(list(stats["weights"].values()), dtype=G.dtype) @ G,
                          pcgrad.direction)
    mgda = get_combiner("mgda").combine(G, torch.ones(3, dtype=G.dtype), tasks)
    stats = conflict_statistics(G, mgda.direction, tasks, combination=mgda)
    assert list(stats["weights"]) == tasks and "altered" not in stats
    assert sum(stats["weights"].values()) == pytest.approx(1.0)  # MGDA's simplex weights


def test_cosines_of_zero_rows_are_zero_not_nan():
    cos = cosine_matrix(torch.zeros(3, 3))
    assert torch.equal(cos, torch.zeros(3, 3))


def test_one_backward_of_the_summed_loss_equals_the_sum_of_rows(tiny_backbone, synthetic_dir):
    """The `sum` fast path computes the same direction as K per-task passes and G.sum(0)."""
    model, tokenizer = make_model(tiny_backbone)
    params = list(model.bert.parameters())
    grads = TaskGradients(params, 3)
    bs = batches(synthetic_dir, tokenizer)
    for k, b in enumerate(bs):
        grads.capture(k)
        model.loss(b).backward()
    per_task = grads.G.sum(0).clone()
    grads.capture_direction()
    sum(model.loss(b) for b in bs).backward()
    torch.testing.assert_close(grads.direction, per_task, rtol=1e-5, atol=1e-7)


def logged(step: int, G: torch.Tensor, tasks, combination=None) -> StepRecord:
    """The record a step with task gradients G writes to log.jsonl, read back from its JSON."""
    stats = conflict_statistics(G, G.sum(0), tasks, (), combination)
    record = StepRecord.from_statistics(step, 0, 1e-3, dict.fromkeys(tasks, 1.0), 0.0, stats)
    return StepRecord.from_dict(record.to_dict())


def test_a_logged_step_keeps_its_gramian():
    G = torch.randn(3, 500, generator=torch.Generator().manual_seed(0)) * torch.tensor(
        [[1e-3], [1.0], [40.0]])
    gramian = gramian_of(G)
    rebuilt = logged_gramian(logged(0, G, ("sst", "quora", "sts")))
    assert torch.allclose(rebuilt, gramian, rtol=1e-12, atol=0)


def test_rows_with_a_gramian_have_it_also_when_it_is_singular():
    gen = torch.Generator().manual_seed(1)
    full = gramian_of(torch.randn(3, 50, generator=gen, dtype=torch.float64))
    g = torch.randn(50, generator=gen, dtype=torch.float64)
    singular = gramian_of(torch.stack([g, -2 * g, torch.zeros(50, dtype=torch.float64)]))
    for gramian in (full, singular):
        rows = gradients_with_gramian(gramian)
        assert rows.shape == (3, 3)
        assert torch.allclose(rows @ rows.T, gramian, rtol=0, atol=1e-10 * gramian.abs().max())


@pytest.mark.parametrize("target_update", ["always", "on-intervention"])
def test_gradvac_replayed_from_a_log_alters_the_same_gradients_as_on_the_real_G(target_update):
    """GradVac decides from the Gramian alone: replaying a run's logged norms and cosines through
    a fresh combiner reproduces, step by step, which task gradients it altered."""
    tasks = ("sst", "quora", "sts")
    gen = torch.Generator().manual_seed(2)
    shared = torch.randn(400, generator=gen)
    steps = [shared + 4 * torch.randn(3, 400, generator=gen) for _ in range(40)]  # cos ~ 0.06
    live = get_combiner("gradvac", seed=0, tasks=tasks, beta=0.3, target_update=target_update)
    replay = get_combiner("gradvac", seed=0, tasks=tasks, beta=0.3, target_update=target_update)
    altered_live, altered_replay = [], []
    for step, G in enumerate(steps):
        combination = live.combine(G, torch.ones(3), tasks)
        rows = gradients_with_gramian(logged_gramian(logged(step, G, tasks, combination)))
        altered_live.append(combination.altered)
        altered_replay.append(replay.combine(rows, torch.ones(3), tasks).altered)
    altered_live = torch.stack(altered_live)
    assert 0 < altered_live.sum() < altered_live.numel()  # the sequence exercises both branches
    assert torch.equal(torch.stack(altered_replay), altered_live)
    assert replay.targets == pytest.approx(live.targets, abs=1e-9)


def test_a_step_without_task_gradients_has_no_gramian_to_replay():
    record = StepRecord(7, 0, 1e-3, {"sst": 1.0, "sts": 2.0}, 0.0, weights={"sst": 1, "sts": 1})
    with pytest.raises(ValueError, match="step 7 logged no per-task gradient norms"):
        logged_gramian(record)
