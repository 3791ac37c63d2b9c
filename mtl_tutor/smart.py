"""SMART: smoothness-inducing adversarial regularisation and Bregman proximal point steps.

Jiang, He, Chen, Liu, Gao, Zhao 2020, "SMART: Robust and Efficient Fine-Tuning for Pre-trained
Natural Language Models through Principled Regularized Optimization",
https://arxiv.org/abs/1911.03437, section 3 (Eq. 1-4) and Algorithm 1. The fine-tuning problem
is regularised (Eq. 1, 2) and solved by proximal point steps with a momentum teacher (Eq. 3, 4):

    min_theta F(theta) = L(theta) + lambda_s R_s(theta)
    R_s(theta) = mean_i l_s(f(x_i; theta), f(x~_i; theta)),
        x~_i = argmax_{|x~_i - x_i|_inf <= eps} l_s(f(x_i; theta), f(x~_i; theta))
    theta_{t+1} = argmin_theta F(theta) + mu D_Breg(theta, theta~_t),
    D_Breg(theta, theta~_t) = mean_i l_s(f(x_i; theta), f(x_i; theta~_t)),
        theta~_t = (1 - beta) theta_t + beta theta~_{t-1},  theta~_1 = theta_0  (the teacher)

l_s is :func:`~mtl_tutor.losses.smoothness_divergence` (symmetric KL for classes, squared error
for scores). x is the output of BERT's embedding layer; minBERT takes no ``inputs_embeds``, so the
perturbation is added by a forward hook on ``bert.embeddings`` (the backbone is not edited).
The maximisation is one projected step of normalised gradient ascent from Gaussian noise:
x~ = x + nu, nu ~ N(0, sigma^2 I); g = grad_x~ l_s; x~ <- Pi_eps(x~ + eta g / |g|_inf).

Each task's terms enter its loss, so a gradient combiner sees them, or, with
``TrainConfig.smart_placement="after-combining"``, their gradient is added to the combined
direction (:func:`mtl_tutor.train.add_smart_gradients`), as the CS224N Kehoe & Ravella report
applied SMART after its gradient surgery.

Defaults are the paper's (section 4): eps = 1e-5, sigma = 1e-5, eta = 1e-3, one ascent step,
lambda_s = 1 (of {1, 3, 5}), mu = 1, beta = 0.99. Ours: one optimiser step per proximal problem
(S = 1 in Algorithm 1), so the teacher moves after every step; each task's Bregman term keeps
its own teacher, started from the parameters at that task's first batch (Algorithm 1 keeps one
for the model; they differ only where a task joins late, as after a warm-up, and the difference
fades as beta^t). Differences from the official MT-DNN code: |g|_inf is taken per token vector
(the same for the padded and the packed layout), and the teacher is a copy of the parameters
evaluated through ``torch.func.functional_call`` in the model's current mode (dropout on while
training); it is not saved in checkpoints.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call

from .losses import smoothness_divergence

SMART_PLACEMENTS = ("task-loss", "after-combining")  # where SMART's terms enter a step


class EmbeddingPerturbation:
    """Adds ``delta`` to the output of an embedding module while ``delta`` is set.

    ``noise_std`` set and ``delta`` None: the next forward draws delta ~ N(0, noise_std^2) of the
    output's shape (which the caller cannot know beforehand: padded or packed tokens).
    """

    def __init__(self, embeddings: nn.Module):
        self.delta: Tensor | None = None
        self.noise_std: float | None = None
        self.handle = embeddings.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args, output: Tensor) -> Tensor:
        if self.delta is None and self.noise_std is not None:
            self.delta = (torch.randn_like(output) * self.noise_std).requires_grad_()
        return output if self.delta is None else output + self.delta

    def stop(self) -> None:
        self.delta, self.noise_std = None, None


class SmoothnessRegulariser:
    """lambda_s * R_s for one task (see the module docstring).

    weight: lambda_s. epsilon: the L-inf radius of the perturbation. step_size: eta.
    noise_std: sigma of the initial noise. ascent_steps: steps of the inner maximisation.
    """

    needs_pair = False

    def __init__(self, label: str, weight: float = 1.0, epsilon: float = 1e-5,
                 step_size: float = 1e-3, noise_std: float = 1e-5, ascent_steps: int = 1):
        for name, value in (("weight", weight), ("epsilon", epsilon), ("step_size", step_size),
                            ("noise_std", noise_std), ("ascent_steps", ascent_steps)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.label, self.weight, self.epsilon = label, weight, epsilon
        self.step_size, self.noise_std, self.ascent_steps = step_size, noise_std, int(ascent_steps)
        self.perturbation: EmbeddingPerturbation | None = None

    def __call__(self, model, batch, embeddings: tuple[Tensor, ...], output: Tensor) -> Tensor:
        if self.perturbation is None:
            self.perturbation = EmbeddingPerturbation(model.bert.embeddings)
        perturb = self.perturbation
        clean = output.detach()
        try:
            perturb.noise_std = self.noise_std
            with torch.enable_grad():  # the ascent needs a graph even under no_grad
                for _ in range(self.ascent_steps):
                    divergence = smoothness_divergence(self.label, model(batch), clean)
                    (g,) = torch.autograd.grad(divergence, perturb.delta)
                    scale = g.abs().amax(-1, keepdim=True).clamp_min(1e-12)  # |g|_inf per token
                    delta = perturb.delta.detach() + self.step_size * g / scale
                    perturb.delta = delta.clamp(-self.epsilon, self.epsilon).requires_grad_()
            perturb.delta = None if perturb.delta is None else perturb.delta.detach()
            return smoothness_divergence(self.label, model(batch), output)
        finally:
            perturb.stop()

    def __repr__(self) -> str:
        return (f"SmoothnessRegulariser(weight={self.weight}, epsilon={self.epsilon}, "
                f"step_size={self.step_size}, noise_std={self.noise_std}, "
                f"ascent_steps={self.ascent_steps})")


class BregmanProximalPoint:
    """mu * D_Breg: keeps the model near a momentum average of its past parameters.

    weight: mu. momentum: beta. Call :meth:`after_optimizer_step` after every optimiser step.
    """

    needs_pair = False

    def __init__(self, label: str, weight: float = 1.0, momentum: float = 0.99):
        if weight < 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.label, self.weight, self.momentum = label, weight, momentum
        self.teacher: dict[str, Tensor] | None = None

    def __call__(self, model, batch, embeddings: tuple[Tensor, ...], output: Tensor) -> Tensor:
        if self.teacher is None:  # theta~_0 = theta_0
            self.teacher = {n: p.detach().clone() for n, p in model.named_parameters()}
        with torch.no_grad():
            target = functional_call(model, self.teacher, (batch,), strict=False)
        return smoothness_divergence(self.label, output, target)

    @torch.no_grad()
    def after_optimizer_step(self, model: nn.Module) -> None:
        """theta~ <- (1 - beta) theta + beta theta~."""
        if self.teacher is None:
            return
        for name, p in model.named_parameters():
            self.teacher[name].lerp_(p.detach(), 1.0 - self.momentum)

    def __repr__(self) -> str:
        return f"BregmanProximalPoint(weight={self.weight}, momentum={self.momentum})"
