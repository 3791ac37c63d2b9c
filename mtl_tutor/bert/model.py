"""minBERT: the encoder of Devlin et al. 2019 (https://arxiv.org/abs/1810.04805), written out.

Post-LayerNorm blocks as in the paper and in every released BERT checkpoint:
    h = LayerNorm(x + Dropout(SelfAttention(x)))
    y = LayerNorm(h + Dropout(W2 gelu(W1 h)))
Attention is softmax(Q K^T / sqrt(hs) + mask) V through ``scaled_dot_product_attention``, where
the mask is -inf at padding keys. Parameter names follow the Hugging Face layout so any BERT
checkpoint loads without renaming.

``config.attention`` picks how padding is handled (see sequences.py): "padded" computes on the
whole (B, T) rectangle; "unpadded" computes on the N real tokens only, as (N, C) tensors, and
returns last_hidden_state with zeros at padding positions (it needs right padding, as the
tokenizer produces: a real token at position 0 of every row). Without an attention_mask both
paths are the same. Every block below takes either layout: its token dimensions are written
``...`` = (B, T) or (N,).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import BertConfig
from .sequences import PackedSequences, PaddedSequences

Sequences = PaddedSequences | PackedSequences


class BertEmbeddings(nn.Module):
    """Token + position + segment embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size,
                                            padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, position_ids: Tensor,
                token_type_ids: Tensor | None) -> Tensor:
        """input_ids, token_type_ids: (...); position_ids broadcasts to them -> (..., C)."""
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)  # (..., C)
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention (the Q, K, V projections).

    Q, K and V come from one (3C x C) product of the concatenated weights, not three (C x C)
    products; the parameters stay three Linear layers, as in every BERT checkpoint.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        C = config.hidden_size
        self.n_head = config.num_attention_heads
        self.query = nn.Linear(C, C)
        self.key = nn.Linear(C, C)
        self.value = nn.Linear(C, C)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: Tensor, seqs: Sequences) -> Tensor:
        C = x.shape[-1]
        projections = (self.query, self.key, self.value)
        weight = torch.cat([p.weight for p in projections])  # (3C, C)
        bias = torch.cat([p.bias for p in projections])      # (3C,)
        qkv = F.linear(x, weight, bias).unflatten(-1, (3, self.n_head, C // self.n_head))
        y = seqs.attend(qkv, self.dropout_p if self.training else 0.0)  # (..., nh, hs)
        return y.flatten(-2)  # (..., C)


class BertSelfOutput(nn.Module):
    """Attention output projection, dropout, residual and LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, y: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(y)))


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, x: Tensor, seqs: Sequences) -> Tensor:
        return self.output(self.self(x, seqs), x)


class BertIntermediate(nn.Module):
    """First feed-forward layer and its GELU."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.approximate = "tanh" if config.hidden_act == "gelu_new" else "none"

    def forward(self, h: Tensor) -> Tensor:
        return F.gelu(self.dense(h), approximate=self.approximate)


class BertOutput(nn.Module):
    """Second feed-forward layer, dropout, residual and LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, f: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(f)))


class BertLayer(nn.Module):
    """One encoder block: self-attention sub-layer, then feed-forward sub-layer."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, x: Tensor, seqs: Sequences) -> Tensor:
        h = self.attention(x, seqs)
        return self.output(self.intermediate(h), h)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x: Tensor, seqs: Sequences) -> Tensor:
        for block in self.layer:
            x = block(x, seqs)
        return x


class BertPooler(nn.Module):
    """tanh(W h_[CLS] + b): the sentence vector BERT's next-sentence head was trained on."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, cls_hidden: Tensor) -> Tensor:
        """cls_hidden: (B, C), the last hidden state of each sequence's first token."""
        return torch.tanh(self.dense(cls_hidden))  # (B, C)


class BertModel(nn.Module):
    """``bert(input_ids, attention_mask, token_type_ids)`` -> dict of tensors.

    "last_hidden_state": (B, T, C), one vector per token; "pooler_output": (B, C), from [CLS].
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """BERT's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm."""
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> dict[str, Tensor]:
        if self.config.attention == "unpadded" and attention_mask is not None:
            return self._forward_unpadded(input_ids, attention_mask, token_type_ids)
        T = input_ids.shape[1]
        positions = torch.arange(T, device=input_ids.device)  # (T,) broadcast over B
        x = self.embeddings(input_ids, positions, token_type_ids)  # (B, T, C)
        key_mask = None
        if attention_mask is not None:
            # True where a query may attend: every real (non-padding) key.
            key_mask = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T) broadcast over nh, T
        hidden = self.encoder(x, PaddedSequences(key_mask))  # (B, T, C)
        return {"last_hidden_state": hidden, "pooler_output": self.pooler(hidden[:, 0])}

    def _forward_unpadded(self, input_ids: Tensor, attention_mask: Tensor,
                          token_type_ids: Tensor | None) -> dict[str, Tensor]:
        seqs = PackedSequences.from_mask(attention_mask)
        types = None if token_type_ids is None else seqs.pack(token_type_ids)
        x = self.embeddings(seqs.pack(input_ids), seqs.positions(), types)  # (N, C)
        hidden = self.encoder(x, seqs)  # (N, C)
        return {
            "last_hidden_state": seqs.unpack(hidden),  # (B, T, C), zeros at padding
            "pooler_output": self.pooler(hidden[seqs.first_tokens()]),  # (B, C)
        }

    def use_attention(self, attention: str) -> BertModel:
        """Switch between the "padded" and "unpadded" paths; the weights stay. Returns self."""
        self.config = replace(self.config, attention=attention)
        return self
