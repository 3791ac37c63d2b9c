"""Atomic writes and self-contained run directories.

A run directory holds everything needed to use the trained model without the original backbone
source: ``model.safetensors`` (backbone and heads), ``bert_config.json``, ``tokenizer/`` and
``run_config.json``. Files are written to a temporary name, flushed with fsync and renamed, so a
crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from .bert import BertConfig, BertModel
from .damaged_files import (
    DamagedFileError,
    check_finite_weights,
    non_finite_tensors,
    read_checkpoint,
    read_json,
    read_safetensors,
)
from .model import MultitaskModel, build_model
from .run_config import TrainConfig
from .run_directory import TRAINING_STATE


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(tmp_path)`` then fsync and rename the result onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def save_model(run_dir: Path, model: MultitaskModel, name: str = "model.safetensors") -> Path:
    """Write the model's weights (backbone and heads) atomically; return the file's path.
    Weights that hold NaN or infinite values are never written (a ValueError names them)."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    bad = non_finite_tensors(state)
    if bad:
        raise ValueError(f"{len(bad)} of {len(state)} weights hold NaN or infinite values "
                         f"(first: {bad[0]}); {run_dir / name} was not written")
    atomic_write(run_dir / name, lambda tmp: save_file(state, tmp))
    return run_dir / name


def write_run_files(run_dir: Path, config: TrainConfig, model: MultitaskModel, tokenizer) -> None:
    """The parts of a run directory that do not change during training."""
    atomic_write_text(run_dir / "run_config.json", config.to_json())
    atomic_write_text(run_dir / "bert_config.json",
                      json.dumps(model.bert.config.to_dict(), indent=2) + "\n")
    atomic_write_text(run_dir / "heads.json", json.dumps(model.head_configs, indent=2) + "\n")
    tokenizer.save_pretrained(str(run_dir / "tokenizer"))


def load_run(run_dir: str | Path, device: str = "cpu"):
    """Rebuild a trained model from its run directory: ``(model, tokenizer, config)``. A missing
    file is a FileNotFoundError, a damaged one a DamagedFileError naming it."""
    from transformers import BertTokenizerFast

    run_dir = Path(run_dir)
    for name in ("run_config.json", "bert_config.json", "heads.json", "model.safetensors"):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir}: no {name}; is this a finished mtl-tutor run?")
    config = TrainConfig.load(run_dir / "run_config.json")
    try:
        bert = BertModel(BertConfig.from_json(run_dir / "bert_config.json"))
    except (TypeError, ValueError) as e:
        raise DamagedFileError(run_dir / "bert_config.json", str(e)) from e
    heads = read_json(run_dir / "heads.json")
    try:
        heads = {t: {k: tuple(v) if isinstance(v, list) else v for k, v in h.items()}
                 for t, h in heads.items()}
        model = build_model(bert, config, heads)  # pair encodings, PALs as in training
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise DamagedFileError(run_dir / "heads.json", f"not the heads of this run "
                                                       f"({e})") from e
    path = run_dir / "model.safetensors"
    weights = read_safetensors(path)
    load_weights(path, model, weights)
    try:
        tokenizer = BertTokenizerFast.from_pretrained(str(run_dir / "tokenizer"))
    except OSError as e:
        raise DamagedFileError(run_dir / "tokenizer", f"not a readable tokenizer ({e})") from e
    return model.to(device).eval(), tokenizer, config


def load_weights(path: Path, model: torch.nn.Module, weights: dict) -> None:
    """Load ``weights`` read from ``path`` into ``model``: a DamagedFileError when they are not
    this model's or not finite."""
    check_finite_weights(path, weights)
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise DamagedFileError(path, "does not hold this run's weights "
                                     f"({str(e).splitlines()[0]})") from e


TRAINING_STATE_KEYS = ("step", "model", "optimizer", "schedule", "combiner", "sampler", "streams",
                       "torch_rng", "cuda_rng", "progress")


def save_training_state(run_dir: Path, state: dict) -> None:
    """Atomically write everything a run needs to continue exactly (see ``train(resume=True)``).

    ``state`` holds only tensors, numbers, strings and containers of them, so it loads back with
    ``torch.load(weights_only=True)``: no arbitrary pickle is ever read.
    """
    atomic_write(run_dir / TRAINING_STATE, lambda tmp: torch.save(state, tmp))


def load_training_state(run_dir: Path) -> dict:
    """The state :func:`save_training_state` wrote; a DamagedFileError when the file is not
    such a state or its model holds NaN or infinite values."""
    path = Path(run_dir) / TRAINING_STATE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from (the run stopped before "
                                "it saved one); train it again with --overwrite")
    state = read_checkpoint(path)
    missing = [k for k in TRAINING_STATE_KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise DamagedFileError(path, f"not a training state of mtl-tutor (no "
                                     f"{', '.join(missing)})")
    check_finite_weights(path, state["model"])
    return state
