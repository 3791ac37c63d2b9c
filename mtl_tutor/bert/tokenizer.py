"""The WordPiece tokenizer: ``transformers.BertTokenizerFast`` built from a checkpoint's vocab."""

from __future__ import annotations

from pathlib import Path

from transformers import BertTokenizerFast


def tokenizer_from_dir(directory: str | Path) -> BertTokenizerFast:
    """Load the tokenizer stored beside a checkpoint (``tokenizer.json`` or ``vocab.txt``)."""
    directory = Path(directory)
    if not (directory / "tokenizer.json").exists() and not (directory / "vocab.txt").exists():
        raise FileNotFoundError(
            f"{directory}: no tokenizer.json or vocab.txt; a BERT checkpoint directory needs one"
        )
    return BertTokenizerFast.from_pretrained(str(directory))
