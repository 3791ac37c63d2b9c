"""Reading the files of a run or a backbone, with a clear error for a damaged one.

A file that is there but cannot be used raises :class:`DamagedFileError`, naming the file and
saying what is wrong: not valid JSON, a truncated or foreign checkpoint, an unreadable safetensors
file, or weights that hold NaN or infinite values (one flipped bit in a float's exponent makes an
infinity, and every prediction of the model is then NaN). Checkpoints are read with
``torch.load(weights_only=True)`` only, never otherwise: a file it cannot read is reported as
damaged. A missing file stays a ``FileNotFoundError``; a file the system will not let us read
stays an ``OSError``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file


class DamagedFileError(ValueError):
    """A file that cannot be used. path: the file; problem: what is wrong with it."""

    def __init__(self, path: str | Path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path} is damaged: {problem}")

    def __reduce__(self):
        return type(self), (self.path, self.problem)


def read_json(path: str | Path) -> Any:
    """The JSON value in ``path``."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DamagedFileError(path, f"not valid JSON (line {e.lineno}: {e.msg})") from e
    except UnicodeDecodeError as e:
        raise DamagedFileError(path, f"not UTF-8 text (byte {e.start})") from e


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, on the CPU."""
    try:
        return load_file(path, device="cpu")
    except SafetensorError as e:
        raise DamagedFileError(path, f"not a readable safetensors file ({e})") from e


def read_checkpoint(path: str | Path) -> Any:
    """What ``torch.save`` wrote to ``path`` (tensors, numbers, strings and containers only)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise
    except Exception as e:  # torch.load fails on arbitrary bytes in many ways
        raise DamagedFileError(path, "it cannot be read as a checkpoint of tensors (truncated, "
                                     "overwritten, or not written by mtl-tutor)") from e


def non_finite_tensors(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """The names of the floating-point tensors that hold a NaN or an infinity."""
    return [name for name, t in tensors.items()
            if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def check_finite_weights(path: str | Path, tensors: Mapping[str, torch.Tensor]) -> None:
    """A :class:`DamagedFileError` when a weight read from ``path`` is NaN or infinite."""
    bad = non_finite_tensors(tensors)
    if bad:
        raise DamagedFileError(
            path, f"{len(bad)} of {len(tensors)} tensors hold NaN or infinite values "
                  f"(first: {bad[0]}), so the model would predict NaN (or it was saved from a "
                  "run that diverged)")
