"""Gradient surgery written on the Gramian (PCGrad, GradVac).

Both methods change each task gradient ``g_i`` by adding multiples of the other tasks' original
gradients, so the treated gradient is ``g_i' = C[i] @ G`` for a K x K coefficient matrix ``C``
(the identity where nothing is changed) found from the Gramian alone, and
``d = sum_i g_i' = C.sum(0) @ G``. A task's gradient is *altered* in a step when its row of
``C`` differs from the identity's: the unit in which the CS224N reports count interventions.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Combination, relative_change, weighted_sum


def altered_rows(coefficients: Tensor) -> Tensor:
    """[K] bool: which tasks' gradients ``C`` changes (row i differs from the identity's)."""
    identity = torch.eye(len(coefficients), dtype=coefficients.dtype)
    return (coefficients != identity).any(dim=1)


def surgery_combination(G: Tensor, gramian: Tensor, coefficients: Tensor) -> Combination:
    """``d = C.sum(0) @ G`` with its weights, change and altered tasks (``C`` in row order)."""
    weights = coefficients.sum(0)
    return Combination(weighted_sum(weights, G), gramian, weights,
                       relative_change([(gramian, weights)]), altered_rows(coefficients))
