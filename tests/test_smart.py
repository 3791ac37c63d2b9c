"""SMART (Jiang et al. 2020): the smoothness term, the Bregman proximal term's value and its
momentum teacher against the paper's formulas, and SMART applied after the gradient combiner."""

import copy

import pytest
import torch

from mtl_tutor.data import TaskBatches, load_task
from mtl_tutor.data.tasks import get_task
from mtl_tutor.losses import smoothness_divergence
from mtl_tutor.model import MultitaskModel
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.smart import BregmanProximalPoint, SmoothnessRegulariser
from mtl_tutor.train import build_run, take_step


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


def model_with(parameters: dict, like):
    """A copy of ``like`` holding ``parameters``: f(x; theta) for any theta, by hand."""
    other = copy.deepcopy(like)
    with torch.no_grad():
        for name, p in other.named_parameters():
            p.copy_(parameters[name])
    return other


def test_bregman_term_and_teacher_follow_the_papers_formulas(tiny_backbone, synthetic_dir):
    bert, tokenizer = tiny_backbone
    model = MultitaskModel(copy.deepcopy(bert), {"sst": get_task("sst")}).eval()
    batch = next(TaskBatches(load_task(synthetic_dir, "sst", "train"), tokenizer, 8))
    beta = 0.9
    bregman = BregmanProximalPoint("class", weight=2.0, momentum=beta)
    theta0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    # theta~_1 = theta_0: the term is 0 at the start
    assert bregman(model, batch, (), model(batch)).item() == pytest.approx(0.0, abs=1e-10)
    teacher = dict(theta0)
    for t in range(3):  # three optimiser steps moving theta, the teacher following by momentum
        generator = torch.Generator().manual_seed(t)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=generator))
        output = model(batch)
        # D_Breg(theta, theta~_t) = mean_i l_s(f(x_i; theta), f(x_i; theta~_t)), l_s = sym. KL
        expected = smoothness_divergence("class", output, model_with(teacher, model)(batch))
        value = bregman(model, batch, (), output)
        assert value.item() == pytest.approx(expected.item(), rel=1e-5) and value.item() > 1e-4
        # the gradient flows through f(x; theta) only, the teacher being a constant
        (grad,) = torch.autograd.grad(value, model.heads["sst"].net[-1].weight, retain_graph=True)
        (hand,) = torch.autograd.grad(expected, model.heads["sst"].net[-1].weight)
        assert torch.allclose(grad, hand, atol=1e-6)
        bregman.after_optimizer_step(model)
        # theta~_{t+1} = (1 - beta) theta_{t+1} + beta theta~_t
        teacher = {n: (1 - beta) * p.detach() + beta * teacher[n]
                   for n, p in model.named_parameters()}
        for name in teacher:
            assert torch.allclose(bregman.teacher[name], teacher[name], atol=1e-6)


def gradient(loss, params, retain_graph=False):
    """d loss / d params as one flat vector (zeros for parameters the loss does not reach)."""
    grads = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True)
    return torch.cat([torch.zeros_like(p).flatten() if g is None else g.flatten()
                      for g, p in zip(grads, params)])


def flat_grad(params):
    return torch.cat([p.grad.flatten() for p in params])


@pytest.mark.parametrize("placement", ["task-loss", "after-combining"])
def test_smart_after_combining_adds_its_gradient_to_the_combined_direction(
        placement, synthetic_dir, tmp_path):
    config = TrainConfig(backbone="tiny", data=str(synthetic_dir), out=str(tmp_path / "run"),
                         epochs=1, batch_size=8, max_length=32, progress=False,
                         combiner="pcgrad", max_grad_norm=None, smart_placement=placement,
                         aux_losses={"sts": {"bregman": {"weight": 50.0}}})
    run = build_run(config)
    model = run.model.eval()  # no dropout: every forward pass below is the same function
    batches = lambda: [[next(run.streams[t])] for t in config.tasks]  # noqa: E731
    take_step(run, batches(), 0)  # theta moves away from the Bregman teacher
    step = batches()
    shared = model.shared_parameters()
    combiner = copy.deepcopy(run.combiner)
    teacher = copy.deepcopy(model.aux_losses["sts"][0].teacher)
    # By hand: each task's gradient, SMART's term inside or outside it, then PCGrad.
    bregman = BregmanProximalPoint("score", weight=50.0)
    bregman.teacher = teacher
    rows, task_losses, smart = [], [], None
    for [batch] in step:
        embeddings = model.embed(batch)
        output = model.heads[batch.task](*embeddings)
        task_loss = model.losses[batch.task](output, batch.labels)
        term = 50.0 * bregman(model, batch, embeddings, output) if batch.task == "sts" else 0.0
        inside = task_loss + (term if placement == "task-loss" else 0.0)
        rows.append(gradient(inside, shared, retain_graph=True))
        task_losses.append(inside.item())
        if batch.task == "sts":
            smart = gradient(term, shared)
    assert smart.norm() > 0
    assert model.smart_loss(step[0][0]) == 0.0  # SST has no SMART term
    expected = combiner(torch.stack(rows), torch.tensor(task_losses))
    if placement == "after-combining":
        expected = expected + smart
    seen = {}
    step_optimizer = run.optimizer.step
    run.optimizer.step = lambda: (seen.setdefault("d", flat_grad(shared)), step_optimizer())
    losses, _ = take_step(run, step, 1)
    assert torch.allclose(seen["d"], expected, rtol=1e-4, atol=1e-6)
    assert losses.tolist() == pytest.approx(task_losses, rel=1e-5)
