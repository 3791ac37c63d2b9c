"""Shared helpers for the combiner tests: build any combiner ready to run on a [K, P] matrix."""

import torch

from mtl_tutor.combiners import ColumnGroups, get_combiner


def fresh(name, K, P, seed=0, tasks=None, **options):
    """``get_combiner(name, seed, tasks)`` told that all P columns are one group."""
    combiner = get_combiner(name, seed=seed, tasks=tasks, **options)
    combiner.on_event(ColumnGroups((("all", slice(0, P)),)))
    return combiner


def gradient_matrix(structure, K, P, scale, seed, dtype=torch.float64):
    """A [K, P] matrix of the given structure at the given scale."""
    generator = torch.Generator().manual_seed(seed)
    G = torch.randn(K, P, generator=generator, dtype=torch.float64)
    if structure == "zero_row":
        G[0] = 0
    elif structure == "duplicate_row" and K > 1:
        G[1] = G[0]
    elif structure == "opposite" and K > 1:
        G[1] = -G[0]
    elif structure == "orthogonal":
        G = torch.zeros(K, P, dtype=torch.float64)
        lengths = torch.rand(K, generator=generator, dtype=torch.float64) + 0.5
        G[torch.arange(K), torch.arange(K) % P] = lengths
    elif structure == "all_zero":
        G.zero_()
    return (scale * G).to(dtype)
