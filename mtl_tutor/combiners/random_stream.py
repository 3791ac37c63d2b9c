"""A combiner's own random numbers: reproducible from a seed, restorable from a checkpoint.

Each combiner that draws anything (PCGrad's task order, RLW's weights, GradDrop's thresholds)
owns one :class:`RandomStream`, so its draws never disturb, and are never disturbed by, the
global torch RNG. Draws of P numbers happen on the gradients' device (one generator per
device, created on first use and seeded from the stream's seed), so nothing P-sized crosses
between host and accelerator.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import generator_state
from .options import integer


class RandomStream:
    """Seeded torch generators, one per device, whose states form a checkpoint."""

    def __init__(self, seed: int) -> None:
        self.seed = integer("seed", seed)
        self.cpu = torch.Generator().manual_seed(seed)
        self._on_device: dict[str, torch.Generator] = {}

    def on(self, device: torch.device) -> torch.Generator:
        """The generator for ``device`` (the CPU one for CPU tensors)."""
        if device.type == "cpu":
            return self.cpu
        key = str(device)
        if key not in self._on_device:
            self._on_device[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self._on_device[key]

    def state_dict(self) -> dict[str, Tensor]:
        state = generator_state(self.cpu)
        for key, generator in self._on_device.items():
            state[f"rng@{key}"] = generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.cpu.set_state(state["rng"])
        for key, value in state.items():
            if key.startswith("rng@"):
                self.on(torch.device(key.removeprefix("rng@"))).set_state(value)
