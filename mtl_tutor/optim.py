"""AdamW written out, with the CS224N minBERT semantics.

Adam (Kingma & Ba 2015, https://arxiv.org/abs/1412.6980) with decoupled weight decay
(Loshchilov & Hutter 2019, https://arxiv.org/abs/1711.05101). For each parameter p with gradient g
at step t:

    m <- beta1 m + (1 - beta1) g
    v <- beta2 v + (1 - beta2) g^2
    alpha_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)     (lr when correct_bias=False)
    p <- p - alpha_t * m / (sqrt(v) + eps)              (the "efficient" form, Kingma & Ba sec. 2)
    p <- p - lr * weight_decay * p                      (decoupled decay, after the Adam step)

This differs from ``torch.optim.AdamW`` in two places, both as in the CS224N reference: eps is
added to sqrt(v) before, not after, the bias correction, and the decay is applied to the updated
parameter instead of before the update. With weight_decay=0 and eps small against sqrt(v) the two
agree. ``foreach=True`` (default) updates every parameter of a group with a handful of
multi-tensor kernels; ``foreach=False`` is the same arithmetic one parameter at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor


class AdamW(torch.optim.Optimizer):
    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
        foreach: bool = True,
    ):
        if lr < 0.0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must each be in [0, 1), got {betas}")
        if eps < 0.0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if weight_decay < 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        correct_bias=correct_bias, foreach=foreach)
        super().__init__(params, defaults)

    def __repr__(self) -> str:
        g = self.defaults
        return (f"AdamW(lr={g['lr']}, betas={g['betas']}, eps={g['eps']}, "
                f"weight_decay={g['weight_decay']}, correct_bias={g['correct_bias']}, "
                f"foreach={g['foreach']})")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            if any(p.grad.is_sparse for p in params):
                raise RuntimeError("AdamW does not support sparse gradients")
            by_step: dict[int, list[Tensor]] = {}
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                by_step.setdefault(state["step"], []).append(p)
            # Parameters that skipped steps (a task head absent from some steps) have their own t.
            beta1, beta2 = group["betas"]
            update = _step_foreach if group["foreach"] else _step_loop
            for t, ps in by_step.items():
                alpha = group["lr"]
                if group["correct_bias"]:
                    alpha = alpha * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
                update(ps, [self.state[p] for p in ps], alpha, beta1, beta2, group["eps"],
                       group["lr"] * group["weight_decay"])
        return loss


def _step_loop(params, states, alpha, beta1, beta2, eps, decay):
    for p, s in zip(params, states):
        m, v = s["exp_avg"], s["exp_avg_sq"]
        m.mul_(beta1).add_(p.grad, alpha=1.0 - beta1)
        v.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
        p.addcdiv_(m, v.sqrt().add_(eps), value=-alpha)
        if decay:
            p.mul_(1.0 - decay)


def _step_foreach(params, states, alpha, beta1, beta2, eps, decay):
    grads = [p.grad for p in params]
    ms = [s["exp_avg"] for s in states]
    vs = [s["exp_avg_sq"] for s in states]
    torch._foreach_lerp_(ms, grads, 1.0 - beta1)             # m <- beta1 m + (1 - beta1) g
    torch._foreach_mul_(vs, beta2)
    torch._foreach_addcmul_(vs, grads, grads, 1.0 - beta2)   # v <- beta2 v + (1 - beta2) g^2
    denom = torch._foreach_sqrt(vs)
    torch._foreach_add_(denom, eps)
    torch._foreach_addcdiv_(params, ms, denom, -alpha)
    if decay:
        torch._foreach_mul_(params, 1.0 - decay)
