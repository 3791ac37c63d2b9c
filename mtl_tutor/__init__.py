"""mtl-tutor: multi-task learning with BERT, learnt by running it.

``load_backbone``, ``BertConfig`` and ``BertModel`` are imported from :mod:`mtl_tutor.bert` when
first used (PEP 562), so that ``import mtl_tutor`` alone does not load torch: the command line
can then answer a Ctrl-C while it starts (:mod:`mtl_tutor.__main__`).
"""

__all__ = ["BertConfig", "BertModel", "load_backbone"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in __all__:
        from . import bert

        return getattr(bert, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
