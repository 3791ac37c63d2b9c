"""Projected attention layers (PALs): a small task-specific attention beside every BERT layer.

Stickland & Murray 2019, "BERT and PALs: Projected Attention Layers for Efficient Adaptation in
Multi-Task Learning", https://arxiv.org/abs/1902.02671, section 3 and Figure 1: a task-specific
function TS runs in parallel with each BERT layer and its output joins the layer's last sum,
the add-norm of the feed-forward sub-layer. In minBERT's notation (see ``bert/model.py``), with
x the input of layer l and t the task,

    a = LN(x + MH(x))                          the attention sub-layer, unchanged
    h = LN(a + FFN(a) + TS_t^l(x))             the feed-forward add-norm, with the task term
    TS_t^l(x) = GELU(V_t^D g_t^l(V_t^E x + b^E) + b^D)

V^E (d_s x d_m) projects down and V^D (d_m x d_s) back up, both with biases and shared by all
layers of the task; g^l is multi-head self-attention in the projected d_s space, one per layer,
with query, key and value maps (with biases) and no output matrix (V^D plays that part). This is
the paper's reference code (github.com/AsaCooperStickland/Bert-n-Pals, ``modeling.py``:
``BERTPals`` and ``BERTLayer``): the PAL reads the layer's input x, its output passes through
the GELU, and it is added to the residual of the feed-forward sub-layer before its LayerNorm.

Sizes: the paper uses d_s = 204 for BERT-base (d_m = 768), and the reference code gives the PAL
attention 6 heads. The default ``size`` keeps the paper's ratio d_s / d_m = 204 / 768 for any
backbone, rounded to a multiple of the heads: d_s = 102 with 6 heads of 17 for MiniLM-L6
(d_m = 384), 204 for BERT-base, 18 for the tiny test backbone (d_m = 64).

Ours, not the paper's: V^D and b^D start at zero, so TS = GELU(0) = 0 and a model with fresh
PALs computes exactly what the backbone alone computes (the reference code draws every new
weight from N(0, 0.02)); V^E and the attention start from BERT's N(0, 0.02) with zero biases.

The backbone is not edited: forward pre-hooks do the work. One on each ``BertLayer`` remembers
the layer's input x and the batch's sequences (the padding mask or packing); one on the layer's
``output`` (``BertOutput.forward(f, residual)`` computes LN(residual + Dropout(W2 f))) replaces
its residual a by a + TS(x), which is the formula above. Only the PAL of the active task (the
task of the batch being encoded, set by the model) runs; with no active PAL the backbone is
unchanged. PAL parameters belong to their task: they are never part of the shared parameters
whose per-task gradients form G. To train PALs and heads on a frozen backbone, set
``TrainConfig.freeze_backbone_steps`` to the run's step count (or more).
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import partial

import torch.nn.functional as F
from torch import Tensor, nn

from .bert import BertModel

PAPER_SIZE, PAPER_HIDDEN, PAPER_HEADS = 204, 768, 6  # d_s, d_m of BERT-base; heads in BERTPals


def default_size(hidden_size: int, num_heads: int) -> int:
    """d_s at the paper's ratio 204 / 768 of ``hidden_size``, rounded to a multiple of the heads.

    >>> default_size(768, 6), default_size(384, 6), default_size(64, 6)
    (204, 102, 18)
    """
    return max(1, round(PAPER_SIZE * hidden_size / PAPER_HIDDEN / num_heads)) * num_heads


class ProjectedSelfAttention(nn.Module):
    """g^l: multi-head self-attention of width ``size`` without an output matrix (one per
    layer): query, key and value maps with biases, softmax(Q K^T / sqrt(hs) + mask) V."""

    def __init__(self, size: int, num_heads: int, dropout: float):
        super().__init__()
        self.qkv = nn.Linear(size, 3 * size)
        nn.init.normal_(self.qkv.weight, std=0.02)
        nn.init.zeros_(self.qkv.bias)
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
        self.encoder = nn.Linear(hidden_size, size)  # V^E, b^E
        self.decoder = nn.Linear(size, hidden_size)  # V^D, b^D
        nn.init.normal_(self.encoder.weight, std=0.02)
        nn.init.zeros_(self.encoder.bias)
        nn.init.zeros_(self.decoder.weight)
        nn.init.zeros_(self.decoder.bias)
        self.attention = nn.ModuleList(ProjectedSelfAttention(size, num_heads, dropout)
                                       for _ in range(num_layers))

    def forward(self, x: Tensor, seqs, layer: int) -> Tensor:
        """TS^l(x) = GELU(V^D g^l(V^E x)): (..., d_m) -> (..., d_m)."""
        return F.gelu(self.decoder(self.attention[layer](self.encoder(x), seqs)))


class ProjectedAttentionLayers(nn.Module):
    """PALs for ``tasks`` hooked into every layer of ``bert``.

    size: d_s, the projected width; it must divide by num_heads (None: :func:`default_size`,
    the paper's ratio to the backbone's width). num_heads: heads of each PAL attention (6, as
    in the reference code). dropout: on the PAL attention probabilities (None: the backbone's
    attention dropout, as in the reference code).
    """

    def __init__(self, bert: BertModel, tasks: list[str] | tuple[str, ...],
                 size: int | None = None, num_heads: int = PAPER_HEADS,
                 dropout: float | None = None):
        super().__init__()
        if not tasks:
            raise ValueError("tasks is empty: name the tasks that get PALs")
        config = bert.config
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads}")
        size = default_size(config.hidden_size, num_heads) if size is None else size
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if size % num_heads:
            raise ValueError(f"size ({size}) must be divisible by num_heads ({num_heads})")
        dropout = config.attention_probs_dropout_prob if dropout is None else dropout
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.size, self.num_heads, self.dropout = size, num_heads, dropout
        self.tasks = nn.ModuleDict({t: TaskPAL(config.hidden_size, size, num_heads,
                                               config.num_hidden_layers, dropout) for t in tasks})
        self.active: str | None = None
        self._layer_input: tuple[Tensor, object] | None = None
        for i, block in enumerate(bert.encoder.layer):
            block.register_forward_pre_hook(self._remember_layer_input)
            block.output.register_forward_pre_hook(partial(self._add_pal, i))

    def _remember_layer_input(self, module: nn.Module, args) -> None:
        if self.active in self.tasks:
            self._layer_input = args[0], args[1]  # BertLayer.forward(x, seqs)

    def _add_pal(self, layer: int, module: nn.Module, args):
        if self.active not in self.tasks:
            return None
        f, residual = args  # BertOutput.forward(f, residual) = LN(residual + Dropout(W2 f))
        x, seqs = self._layer_input
        self._layer_input = None
        return f, residual + self.tasks[self.active](x, seqs, layer)

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
