"""Learning-rate schedules: the factor that multiplies the peak learning rate at each step.

Both warm up linearly over the first ``warmup_steps`` steps, then decay to zero at the last step.
:data:`LR_SCHEDULES` maps each name ``TrainConfig.lr_schedule`` accepts to its schedule.
"""

from __future__ import annotations

import math


def warmup_linear_decay(warmup_steps: int, total_steps: int):
    """lr factor: linear from 0 to 1 over the warm-up, then linear down to 0 at the last step."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    return factor


def warmup_cosine_decay(warmup_steps: int, total_steps: int):
    """lr factor: linear warm-up, then (1 + cos(pi t)) / 2 with t from 0 to 1 over the decay
    (Loshchilov & Hutter 2017, SGDR, https://arxiv.org/abs/1608.03983, without restarts)."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * t))
    return factor


LR_SCHEDULES = {"linear": warmup_linear_decay, "cosine": warmup_cosine_decay}
