"""GradAttention: a small transformer reads the task gradients as tokens and weights them.

Source: the CS224N project report "GradAttention" (attention over per-task gradients for
multi-task BERT). Each task gradient is a token; a 2-layer transformer encoder (no positional
encoding, so the weights permute with the tasks) and a linear score give logits, and::

    alpha = softmax_k(score(encoder(tokens))_k),       d = alpha @ G

Tokens. A 22M-long gradient cannot be a token, so each is reduced to a short vector:

* ``mode="subset"`` (the report's): the gradient's values at ``subset_size`` coordinates drawn
  once from the seed (uniformly, with replacement), projected linearly to ``d_model``.
* ``mode="full"``: a sign sketch of the whole gradient. Coordinates are split into
  ``sketch_size`` contiguous chunks and each chunk's values are summed with fixed random signs
  (``sketch_b = sum_{i in chunk b} s_i g_i``), so ``E <sketch(x), sketch(y)> = <x, y>``. It is
  O(P) in time and needs only the P signs (one byte each, 23 MB for 22.7M parameters), never a
  P x r matrix (2.8 GB for r = 32 in float32).

Tokens are divided by the largest token norm, so alpha does not depend on the gradients'
overall scale and d is positively homogeneous.

Training (our choice; the report does not say how the attention is trained). The network
should pick directions that help every task, so each call takes one step of its own Adam
(learning rate ``lr``) to maximise a soft minimum over tasks of the directional improvement

    x_k = <g_k, d> / (||d|| rms_i ||g_i||),     objective = -temperature logsumexp(-x / temperature)

computed from the K x K Gramian (no P-sized work). ``x_k`` is the rate at which task k's
loss falls along the unit direction d (divided by the typical gradient norm so that
``temperature`` has the same meaning at every scale); the soft minimum favours the worst-off
task, like MGDA's max-min objective, while staying smooth. The direction returned is the one
computed before the step.

The network (``network``) is the combiner's own and is stepped by it, never by the trainer's
optimiser; ``state_dict()`` carries it, its Adam state and the step count. The tasks are read
in the combiner's canonical order. Weights are a convex combination, so d = sum_k g_k / K when
the network is indifferent.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import Tensor, nn

from .adam_state import adam_tensors, load_adam_tensors
from .base import Combination, Combiner, relative_change, weighted_sum
from .options import one_of, positive, positive_int

MODES = ("subset", "full")


@contextmanager
def one_thread():
    """Run torch on one CPU thread inside the block. The network's tensors are tiny: several
    threads only wait on each other, and on a busy CPU every one of its hundreds of small
    operations then costs milliseconds (a 2-D landscape of 3,000 calls took minutes)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class GradAttention(Combiner):
    """Attention over task gradients (CS224N report), trained online for the worst task."""

    name = "gradattention"
    option_names = (
        "mode", "subset_size", "sketch_size", "d_model", "num_layers", "num_heads", "lr",
        "temperature", "seed",
    )

    def __init__(
        self,
        mode: str = "subset",
        subset_size: int = 512,
        sketch_size: int = 64,
        d_model: int = 32,
        num_layers: int = 2,
        num_heads: int = 4,
        lr: float = 1e-3,
        temperature: float = 0.1,
        seed: int = 0,
    ) -> None:
        self.mode = one_of("mode", mode, MODES)
        self.subset_size = positive_int("subset_size", subset_size)
        self.sketch_size = positive_int("sketch_size", sketch_size)
        self.d_model = positive_int("d_model", d_model)
        self.num_layers = positive_int("num_layers", num_layers)
        self.num_heads = positive_int("num_heads", num_heads)
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.lr = positive("lr", lr)
        self.temperature = positive("temperature", temperature)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.seed = seed
        width = subset_size if mode == "subset" else sketch_size
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layer = nn.TransformerEncoderLayer(
                d_model, num_heads, dim_feedforward=4 * d_model, dropout=0.0, batch_first=True
            )
            self.network = nn.ModuleDict({
                "embed": nn.Linear(width, d_model),
                "encoder": nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False),
                "score": nn.Linear(d_model, 1),
            })
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=lr, foreach=True)
        self.steps = 0
        self._coordinates: dict[tuple[int, str], Tensor] = {}  # (P, device) -> indices or signs

    def _fixed_draw(self, P: int, device: torch.device) -> Tensor:
        """Subset indices or sketch signs for P columns, a function of (seed, P) only."""
        key = (P, str(device))
        if key not in self._coordinates:
            generator = torch.Generator().manual_seed(self.seed)
            if self.mode == "subset":
                draw = torch.randint(P, (self.subset_size,), generator=generator).sort().values
            else:
                draw = torch.randint(2, (P,), generator=generator, dtype=torch.int8) * 2 - 1
            self._coordinates[key] = draw.to(device)
        return self._coordinates[key]

    def tokens(self, G: Tensor) -> Tensor:
        """One token per task [K, width] (float32, CPU), divided by the largest token norm."""
        draw = self._fixed_draw(G.shape[1], G.device)
        if self.mode == "subset":
            tokens = G[:, draw]
        else:
            chunks = torch.arange(self.sketch_size + 1) * G.shape[1] // self.sketch_size
            dtype = torch.promote_types(G.dtype, torch.float32)  # half sums would overflow
            tokens = torch.stack([G[:, a:b].to(dtype) @ draw[a:b].to(dtype)
                                  for a, b in zip(chunks[:-1], chunks[1:])], dim=1)
        tokens = tokens.detach().to("cpu", torch.float64)
        largest = tokens.norm(dim=1).max()
        return (tokens / largest if largest > 0 else tokens).float()

    def attention(self, tokens: Tensor) -> Tensor:
        """The weights alpha [K] (a softmax over tasks) for tokens [K, width]."""
        hidden = self.network["encoder"](self.network["embed"](tokens)[None])  # (1, K, d_model)
        return torch.softmax(self.network["score"](hidden)[0, :, 0], dim=0)

    def direction(self, G: Tensor, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...]
                  ) -> Combination:
        order = torch.tensor(self.canonical_order(tasks))
        with torch.enable_grad(), one_thread():
            alpha = self.attention(self.tokens(G)[order])  # canonical order
            scale = gramian.diagonal().mean()
            if scale > 0:
                self._learn(alpha.double(), gramian[order][:, order] / scale)
        self.steps += 1
        weights = torch.empty(len(tasks), dtype=torch.float64)
        weights[order] = alpha.detach().double()  # row order
        return Combination(weighted_sum(weights, G), gramian, weights,
                           relative_change([(gramian, weights)]))

    def _learn(self, alpha: Tensor, gramian: Tensor) -> None:
        """One Adam step on the soft minimum of the tasks' directional improvements."""
        norm = (alpha @ gramian @ alpha).clamp(min=1e-24).sqrt()  # ||d|| / rms ||g||
        improvements = gramian @ alpha / norm
        soft_min = -self.temperature * torch.logsumexp(-improvements / self.temperature, dim=0)
        self.optimizer.zero_grad(set_to_none=True)
        (-soft_min).backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict[str, Tensor]:
        network = {f"network.{k}": v.clone() for k, v in self.network.state_dict().items()}
        return {"steps": torch.tensor(self.steps), **network,
                **adam_tensors(self.optimizer, "adam.")}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.steps = int(state["steps"])
        self.network.load_state_dict(
            {k.removeprefix("network."): v for k, v in state.items() if k.startswith("network.")}
        )
        load_adam_tensors(self.optimizer, state, "adam.")
