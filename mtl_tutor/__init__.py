"""mtl-tutor: multi-task learning with BERT, learnt by running it."""

from .bert import BertConfig, BertModel, load_backbone

__all__ = ["BertConfig", "BertModel", "load_backbone"]
__version__ = "0.1.0"
