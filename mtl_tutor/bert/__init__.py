"""minBERT and its weights."""

from .config import BertConfig
from .load import load_backbone
from .model import BertModel

__all__ = ["BertConfig", "BertModel", "load_backbone"]
