"""AdamW against a float64 reference of the CS224N formulas and against torch.optim.AdamW."""

import copy
import math

import pytest
import torch

from mtl_tutor.optim import AdamW


def reference_adamw(p0, grads, lr, betas, eps, wd, correct_bias):
    """The CS224N update, one formula per line, in float64."""
    p = p0.double().clone()
    m = torch.zeros_like(p)
    v = torch.zeros_like(p)
    b1, b2 = betas
    for t, g in enumerate(grads, start=1):
        g = g.double()
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t) if correct_bias else lr
        p = p - alpha * m / (v.sqrt() + eps)
        p = p - lr * wd * p
    return p


def run_ours(p0, grads, **kw):
    p = torch.nn.Parameter(p0.clone())
    opt = AdamW([p], **kw)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    return p.detach()


@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("correct_bias", [True, False])
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_matches_float64_reference_over_many_steps(foreach, correct_bias, wd):
    gen = torch.Generator().manual_seed(0)
    p0 = torch.randn(257, generator=gen)
    grads = [torch.randn(257, generator=gen) * (1 + t % 7) for t in range(300)]
    kw = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-6, weight_decay=wd, correct_bias=correct_bias)
    ours = run_ours(p0, grads, foreach=foreach, **kw)
    renamed = {"wd" if k == "weight_decay" else k: v for k, v in kw.items()}
    ref = reference_adamw(p0, grads, **renamed)
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=1e-5)


def test_matches_torch_adamw_where_they_coincide():
    # No decay, eps negligible against sqrt(v): the two formulations agree.
    gen = torch.Generator().manual_seed(1)
    p0 = torch.randn(64, 32, generator=gen)
    grads = [torch.randn(64, 32, generator=gen) for _ in range(100)]
    ours = run_ours(p0, grads, lr=1e-3, eps=1e-12)
    p = torch.nn.Parameter(p0.clone())
    opt = torch.optim.AdamW([p], lr=1e-3, eps=1e-12, weight_decay=0.0)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    torch.testing.assert_close(ours, p.detach(), rtol=1e-5, atol=1e-6)


def test_foreach_equals_loop_on_several_parameters_and_groups():
    gen = torch.Generator().manual_seed(2)
    shapes = [(3, 4), (7,), (2, 2, 5)]
    init = [torch.randn(s, generator=gen) for s in shapes]
    grads = [[torch.randn(s, generator=gen) for s in shapes] for _ in range(20)]
    results = []
    for foreach in (True, False):
        ps = [torch.nn.Parameter(x.clone()) for x in init]
        opt = AdamW([{"params": ps[:2]}, {"params": ps[2:], "weight_decay": 0.1}], lr=3e-3,
                    foreach=foreach)
        for gs in grads:
            for p, g in zip(ps, gs):
                p.grad = g.clone()
            opt.step()
        results.append([p.detach().clone() for p in ps])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)


def test_state_dict_round_trip_resumes_exactly():
    gen = torch.Generator().manual_seed(3)
    grads = [torch.randn(10, generator=gen) for _ in range(10)]
    p = torch.nn.Parameter(torch.ones(10))
    opt = AdamW([p], lr=1e-2, weight_decay=0.01)
    for g in grads[:5]:
        p.grad = g.clone()
        opt.step()
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = AdamW([q], lr=1e-2, weight_decay=0.01)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))  # as if read from disk
    for g in grads[5:]:
        p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        opt2.step()
    assert torch.equal(p, q)


@pytest.mark.parametrize("kw, name", [(dict(lr=-1.0), "lr"), (dict(betas=(1.0, 0.9)), "betas"),
                                       (dict(eps=-1.0), "eps"),
                                       (dict(weight_decay=-0.1), "weight_decay")])
def test_bad_arguments_name_the_parameter(kw, name):
    with pytest.raises(ValueError, match=name):
        AdamW([torch.nn.Parameter(torch.zeros(1))], **kw)


def test_parameters_without_gradient_are_left_alone():
    p, q = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    opt = AdamW([p, q], lr=0.1, weight_decay=0.5)
    p.grad = torch.ones(3)
    opt.step()
    assert torch.equal(q, torch.ones(3)) and not torch.equal(p, torch.ones(3))


def test_each_parameter_keeps_its_own_step_count():
    # A head that misses a step must see the bias correction of its own step count.
    gen = torch.Generator().manual_seed(4)
    grads = [torch.randn(5, generator=gen) for _ in range(6)]
    p, q = torch.nn.Parameter(torch.zeros(5)), torch.nn.Parameter(torch.zeros(5))
    opt = AdamW([p, q], lr=1e-2)
    for t, g in enumerate(grads):
        p.grad = g.clone()
        q.grad = g.clone() if t % 2 == 0 else None
        opt.step()
    expected = reference_adamw(torch.zeros(5), grads[::2], 1e-2, (0.9, 0.999), 1e-6, 0.0, True)
    torch.testing.assert_close(q.detach().double(), expected, rtol=1e-5, atol=1e-6)
    assert opt.state[q]["step"] == 3 and opt.state[p]["step"] == 6
