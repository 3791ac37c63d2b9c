"""Projected attention layers (PALs): a small task-specific attention beside every BERT layer.

Stickland & Murray 2019, "BERT and PALs: Projected Attention Layers for Efficient Adaptation in
Multi-Task Learning", https://arxiv.org/abs/1902.02671, section 3. Each task t adds, in parallel
with the self-attention of every layer l,

    h = LN(x + SA(x) + TS_t^l(x)),     TS_t^l(x) = V_t^D g_t^l(V_t^E x)

where V^E (d_s x d_m) projects down, V^D (d_m x d_s) projects back up, both shared by all layers
of the task, and g^l is multi-head self-attention in the projected d_s space, one per layer.
The paper uses d_s = 204 with 12 heads for BERT-base (d_m = 768); our default for MiniLM-L6
(d_m = 384) is d_s = 96 with 12 heads of 8 (the same ratio, rounded to divide by the heads).

The backbone is not edited: two forward pre-hooks per layer do the work. One on the layer's
``attention`` remembers the batch's sequences (the padding mask or packing); one on
``attention.output`` (which computes LN(residual + Dropout(W y))) replaces its residual x by
x + TS(x), which is exactly the formula above. Only the PAL of the active task (the task of the
batch being encoded, set by the model) runs; with no active PAL the backbone is unchanged.
V^D starts at zero (our choice; the paper does not say), so a model with fresh PALs computes
what the backbone alone computes. PAL parameters belong to their task: they are never part of
the shared parameters whose per-task gradients form G. To train PALs and heads on a frozen
backbone, set ``TrainConfig.freeze_backbone_steps`` to the run's step count (or more).
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial

from torch import Tensor, nn

from .bert import BertModel


class ProjectedSelfAttention(nn.Module):
    """g^l: multi-head self-attention of width ``size`` (one per layer)."""

    def __init__(self, size: int, num_heads: int, dropout: float):
        super().__init__()
        self.qkv = nn.Linear(size, 3 * size)
        self.num_heads, self.dropout_p = num_heads, dropout

    def forward(self, z: Tensor, seqs) -> Tensor:
        """z: (..., d_s) in the padded (B, T) or packed (N,) layout of ``seqs``."""
        S = z.shape[-1]
        qkv = self.qkv(z).unflatten(-1, (3, self.num_heads, S // self.num_heads))
        # qkv: (..., 3, nh, hs)
        y = seqs.attend(qkv, self.dropout_p if self.training else 0.0)  # (..., nh, hs)
        return y.flatten(-2)  # (..., d_s)


class TaskPAL(nn.Module):
    """One task's PALs: V^E and V^D shared by all layers, an attention g^l per layer."""

    def __init__(self, hidden_size: int, size: int, num_heads: int, num_layers: int,
                 dropout: float):
        super().__init__()
        self.encoder = nn.Linear(hidden_size, size, bias=False)  # V^E
        self.decoder = nn.Linear(size, hidden_size, bias=False)  # V^D
        nn.init.normal_(self.encoder.weight, std=0.02)
        nn.init.zeros_(self.decoder.weight)
        self.attention = nn.ModuleList(ProjectedSelfAttention(size, num_heads, dropout)
                                       for _ in range(num_layers))

    def forward(self, x: Tensor, seqs, layer: int) -> Tensor:
        """TS^l(x): (..., d_m) -> (..., d_m)."""
        return self.decoder(self.attention[layer](self.encoder(x), seqs))


class ProjectedAttentionLayers(nn.Module):
    """PALs for ``tasks`` hooked into every layer of ``bert``.

    size: d_s, the projected width; it must divide by num_heads. dropout: on the PAL attention
    probabilities (None: the backbone's attention dropout).
    """

    def __init__(self, bert: BertModel, tasks: list[str] | tuple[str, ...], size: int = 96,
                 num_heads: int = 12, dropout: float | None = None):
        super().__init__()
        if not tasks:
            raise ValueError("tasks is empty: name the tasks that get PALs")
        if size < 1 or num_heads < 1:
            raise ValueError(f"size and num_heads must be >= 1, got {size} and {num_heads}")
        if size % num_heads:
            raise ValueError(f"size ({size}) must be divisible by num_heads ({num_heads})")
        config = bert.config
        dropout = config.attention_probs_dropout_prob if dropout is None else dropout
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.size, self.num_heads, self.dropout = size, num_heads, dropout
        self.tasks = nn.ModuleDict({t: TaskPAL(config.hidden_size, size, num_heads,
                                               config.num_hidden_layers, dropout) for t in tasks})
        self.active: str | None = None
        self._seqs = None
        for i, block in enumerate(bert.encoder.layer):
            block.attention.register_forward_pre_hook(self._remember_sequences)
            block.attention.output.register_forward_pre_hook(partial(self._add_pal, i))

    def _remember_sequences(self, module: nn.Module, args) -> None:
        self._seqs = args[1]  # BertAttention.forward(x, seqs)

    def _add_pal(self, layer: int, module: nn.Module, args):
        if self.active not in self.tasks:
            return None
        y, residual = args  # BertSelfOutput.forward(y, residual) = LN(residual + Dropout(W y))
        return y, residual + self.tasks[self.active](residual, self._seqs, layer)

    @contextmanager
    def use(self, task: str):
        """Run the PAL of ``task`` (if it has one) for the forward passes inside the block."""
        previous, self.active = self.active, task
        try:
            yield
        finally:
            self.active = previous

    def extra_repr(self) -> str:
        return f"size={self.size}, num_heads={self.num_heads}, dropout={self.dropout}"
