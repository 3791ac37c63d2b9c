"""BERT hyper-parameters, and how a Hugging Face ``config.json`` maps onto them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

ATTENTION_PATHS = ("unpadded", "padded")


@dataclass
class BertConfig:
    vocab_size: int = 30522            # WordPiece vocabulary size
    hidden_size: int = 768             # C: width of every token representation
    num_hidden_layers: int = 12        # number of encoder blocks
    num_attention_heads: int = 12      # nh: heads per self-attention; hs = C // nh
    intermediate_size: int = 3072      # width of the feed-forward hidden layer
    hidden_dropout_prob: float = 0.1   # dropout on embeddings and on each sub-layer output
    attention_probs_dropout_prob: float = 0.1  # dropout on attention probabilities
    max_position_embeddings: int = 512  # longest sequence the position table covers
    type_vocab_size: int = 2           # segment ids (sentence A / sentence B)
    layer_norm_eps: float = 1e-12      # LayerNorm epsilon
    pad_token_id: int = 0              # id of [PAD]
    hidden_act: str = "gelu"           # feed-forward activation: "gelu" (erf) or "gelu_new" (tanh)
    attention: str = "unpadded"        # "unpadded": compute on real tokens only (faster, see
                                       # bench/minbert_vs_hf.py); "padded": on the whole (B, T)

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by "
                f"num_attention_heads ({self.num_attention_heads})"
            )
        if self.hidden_act not in ("gelu", "gelu_new"):
            raise ValueError(f"hidden_act must be 'gelu' or 'gelu_new', got {self.hidden_act!r}")
        if self.attention not in ATTENTION_PATHS:
            raise ValueError(f"attention must be one of {ATTENTION_PATHS}, got {self.attention!r}")

    @classmethod
    def from_json(cls, path: str | Path) -> BertConfig:
        """Read a Hugging Face BERT ``config.json``; keys we do not model are ignored."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from e
        if raw.get("model_type", "bert") != "bert":
            raise ValueError(f"{path}: model_type is {raw['model_type']!r}, expected 'bert'")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)


TINY = BertConfig(
    hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
    max_position_embeddings=128,
)
