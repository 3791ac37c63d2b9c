"""GradAttention: a small transformer reads the task gradients as tokens and weights them.

Source: the CS224N project report "GradAttention" (attention over per-task gradients for
multi-task BERT). Each task gradient is a token; a 2-layer transformer encoder (no positional
encoding, so the weights permute with the tasks) and a linear score give logits::

    alpha = softmax_k(score(encoder(tokens))_k)

Modes (``mode``), i.e. which coordinates the tokens hold and where the direction lives:

* ``"report"`` (the report's method, the default): at every call a fresh random subset S of
  ``subset_size`` distinct coordinates, drawn from the combiner's own seeded generator; the
  tokens are the gradients' values on S only, and the direction is zero outside S::

      d_S = alpha @ G[:, S],       d_p = 0 for p not in S

  so a step updates the shared parameters of S only (AdamW's momentum and weight decay still
  move the others, as they would in the report's training loop).
* ``"fixed-subset"`` (ours): the tokens are the values at ``subset_size`` coordinates drawn once
  from the seed (uniformly, with replacement); the direction ``d = alpha @ G`` moves every
  parameter.
* ``"sketch"`` (ours): the tokens are a sign sketch of the whole gradient. Coordinates are split
  into ``sketch_size`` contiguous chunks and each chunk's values are summed with fixed random
  signs (``sketch_b = sum_{i in chunk b} s_i g_i``), so ``E <sketch(x), sketch(y)> = <x, y>``;
  ``d = alpha @ G``. It is O(P) in time and needs only the P signs (one byte each), never a
  P x r matrix.

Tokens are projected linearly to ``d_model`` after division by the largest token norm, so alpha
does not depend on the gradients' overall scale and d is positively homogeneous. With fewer
than ``subset_size`` coordinates in all (a toy problem), "report" uses every coordinate and pads
the tokens with zeros.

Training (our choice; the report does not say how the attention is trained). The network
should pick directions that help every task, so each call takes one step of its own Adam
(learning rate ``lr``) to maximise a soft minimum over tasks of the directional improvement

    x_k = <g_k, d> / (||d|| rms_i ||g_i||),     objective = -temperature logsumexp(-x / temperature)

computed from the K x K Gramian of the coordinates d lives on (S in "report" mode; no P-sized
work). ``x_k`` is the rate at which task k's loss falls along the unit direction d; the soft
minimum favours the worst-off task, like MGDA's max-min objective, while staying smooth. The
direction returned is the one computed before the step.

The network (``network``) is the combiner's own and is stepped by it, never by the trainer's
optimiser; ``state_dict()`` carries it, its Adam state, the step count and the generator of
the subsets. The tasks are read in the combiner's canonical order. Weights are a convex
combination, so d = sum_k g_k / K (on S) when the network is indifferent.

Differences from the report: the report does not publish its code or the attention network's
training signal; the objective above, the token normalisation and the network's sizes are ours.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import Tensor, nn

from .adam_state import adam_tensors, load_adam_tensors
from .base import Combination, Combiner, gramian_of, relative_change, weighted_sum
from .options import integer, one_of, positive, positive_int
from .random_stream import RandomStream

MODES = ("report", "fixed-subset", "sketch")


def distinct_coordinates(P: int, n: int, generator: torch.Generator) -> Tensor:
    """``min(n, P)`` distinct coordinates of ``range(P)``, sorted, drawn uniformly (without
    replacement) from ``generator``; O(n) work for n much smaller than P."""
    if n >= P:
        return torch.arange(P)
    if 4 * n > P:
        return torch.randperm(P, generator=generator)[:n].sort().values
    drawn = torch.randint(P, (n,), generator=generator).unique()
    while len(drawn) < n:  # replace the repeats
        more = torch.randint(P, (n - len(drawn),), generator=generator)
        drawn = torch.cat([drawn, more]).unique()
    return drawn


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
        mode: str = "report",
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
        self.seed = integer("seed", seed)
        self.random = RandomStream(seed)  # the fresh subsets of "report" mode
        width = sketch_size if mode == "sketch" else subset_size
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
        self.coordinates: Tensor | None = None  # the subset of the last call (not in "sketch")
        self._fixed: dict[tuple[int, str], Tensor] = {}  # (P, device) -> indices or signs

    def _fixed_draw(self, P: int, device: torch.device) -> Tensor:
        """Fixed-subset indices or sketch signs for P columns, a function of (seed, P) only."""
        key = (P, str(device))
        if key not in self._fixed:
            generator = torch.Generator().manual_seed(self.seed)
            if self.mode == "fixed-subset":
                draw = torch.randint(P, (self.subset_size,), generator=generator).sort().values
            else:
                draw = torch.randint(2, (P,), generator=generator, dtype=torch.int8) * 2 - 1
            self._fixed[key] = draw.to(device)
        return self._fixed[key]

    def tokens(self, G: Tensor, coordinates: Tensor | None = None) -> Tensor:
        """One token per row of ``G`` [K, width] (float32, CPU), divided by the largest token
        norm. ``coordinates``: the subset to read ("report" and "fixed-subset"; by default the
        last call's subset in "report" mode, the fixed one in "fixed-subset" mode)."""
        if self.mode == "sketch":
            signs = self._fixed_draw(G.shape[1], G.device)
            chunks = torch.arange(self.sketch_size + 1) * G.shape[1] // self.sketch_size
            dtype = torch.promote_types(G.dtype, torch.float32)  # half sums would overflow
            tokens = torch.stack([G[:, a:b].to(dtype) @ signs[a:b].to(dtype)
                                  for a, b in zip(chunks[:-1], chunks[1:])], dim=1)
        else:
            if coordinates is None:
                coordinates = (self._fixed_draw(G.shape[1], G.device)
                               if self.mode == "fixed-subset" else self.coordinates)
            if coordinates is None:
                raise ValueError("GradAttention(mode='report') draws a fresh subset at every "
                                 "call: pass coordinates=..., or call it once first")
            tokens = G[:, coordinates.to(G.device)]
        tokens = tokens.detach().to("cpu", torch.float64)
        largest = tokens.norm(dim=1).max()
        tokens = tokens / largest if largest > 0 else tokens
        width = self.network["embed"].in_features
        return nn.functional.pad(tokens, (0, width - tokens.shape[1])).float()

    def attention(self, tokens: Tensor) -> Tensor:
        """The weights alpha [K] (a softmax over tasks) for tokens [K, width]."""
        hidden = self.network["encoder"](self.network["embed"](tokens)[None])  # (1, K, d_model)
        return torch.softmax(self.network["score"](hidden)[0, :, 0], dim=0)

    def direction(self, G: Tensor, gramian: Tensor, losses: Tensor, tasks: tuple[str, ...]
                  ) -> Combination:
        if self.mode == "report":
            self.coordinates = distinct_coordinates(G.shape[1], self.subset_size,
                                                    self.random.cpu).to(G.device)
            block = G[:, self.coordinates]  # (K, |S|): all the method reads of G
            lives_on = gramian_of(block)
        else:
            if self.mode == "fixed-subset":
                self.coordinates = self._fixed_draw(G.shape[1], G.device)
            lives_on = gramian
        order = torch.tensor(self.canonical_order(tasks))
        with torch.enable_grad(), one_thread():
            alpha = self.attention(self.tokens(G, self.coordinates)[order])  # canonical order
            scale = lives_on.diagonal().mean()
            if scale > 0:
                self._learn(alpha.double(), lives_on[order][:, order] / scale)
        self.steps += 1
        weights = torch.empty(len(tasks), dtype=torch.float64)
        weights[order] = alpha.detach().double()  # row order
        if self.mode != "report":
            return Combination(weighted_sum(weights, G), gramian, weights,
                               relative_change([(gramian, weights)]))
        d = torch.zeros(G.shape[1], dtype=G.dtype, device=G.device)
        d[self.coordinates] = weighted_sum(weights, block)
        change = relative_change([(lives_on, weights),
                                  (gramian - lives_on, torch.zeros_like(weights))])
        return Combination(d, gramian, weights, change)

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
        return {"steps": torch.tensor(self.steps), **network, **self.random.state_dict(),
                **adam_tensors(self.optimizer, "adam.")}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.steps = int(state["steps"])
        self.network.load_state_dict(
            {k.removeprefix("network."): v for k, v in state.items() if k.startswith("network.")}
        )
        self.random.load_state_dict(state)
        load_adam_tensors(self.optimizer, state, "adam.")
