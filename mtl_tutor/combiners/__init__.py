"""Combiners: per-task gradients ``G`` [K, P] and losses [K] -> one update direction [P].

>>> import torch
>>> from mtl_tutor.combiners import get_combiner
>>> combine = get_combiner("pcgrad", seed=0, tasks=["sst", "sts"])
>>> combine(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]), torch.ones(2))
tensor([0.5000, 1.5000])
>>> combine(torch.tensor([[-1.0, 1.0], [1.0, 0.0]]), torch.ones(2), tasks=["sts", "sst"])
tensor([0.5000, 1.5000])
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from .aligned import AlignedMTL
from .base import Combination, Combiner, GramianCombiner, LossWeighting, NonFiniteInput
from .cagrad import CAGrad
from .config import ConFIG
from .dbmtl import DBMTL
from .dwa import DWA
from .events import ColumnGroups, EpochEnd, LossesAfterStep, TrainingEvent
from .fairgrad import FairGrad
from .famo import FAMO
from .gradattention import GradAttention
from .graddrop import GradDrop
from .gradnorm import GradNorm
from .gradvac import GradVac
from .imtl import IMTL
from .mgda import MGDA
from .nashmtl import NashMTL
from .pcgrad import PCGrad
from .rlw import RLW
from .sum import Sum
from .uncertainty import Uncertainty
from .upgrad import UPGrad

_COMBINERS: dict[str, type[Combiner]] = {
    # the CS224N reports' methods
    "sum": Sum,
    "pcgrad": PCGrad,
    "gradvac": GradVac,
    "uncertainty": Uncertainty,
    "gradattention": GradAttention,
    # the field: gradient-based, then loss-based
    "mgda": MGDA,
    "cagrad": CAGrad,
    "imtl": IMTL,
    "nashmtl": NashMTL,
    "aligned": AlignedMTL,
    "upgrad": UPGrad,
    "dwa": DWA,
    "rlw": RLW,
    "gradnorm": GradNorm,
    "famo": FAMO,
    "graddrop": GradDrop,
    "config": ConFIG,
    "fairgrad": FairGrad,
    "dbmtl": DBMTL,
}

COMBINER_NAMES: tuple[str, ...] = tuple(_COMBINERS)
"""Every combiner's name, in the order the notebooks teach them."""


def get_combiner(name: str, seed: int = 0, tasks: Sequence[str] | None = None,
                 **options: object) -> Combiner:
    """A new combiner by name; ``seed`` feeds its own random generator (if it draws anything);
    ``tasks`` declares the names of the tasks it will see (rows without names are then these
    tasks, and their order is the combiner's canonical order).

    Raises ValueError, listing the valid choices, for an unknown name or option.
    """
    if name not in _COMBINERS:
        raise ValueError(f"unknown combiner {name!r}; valid names: {', '.join(COMBINER_NAMES)}")
    cls = _COMBINERS[name]
    accepted = list(inspect.signature(cls).parameters)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        valid = ", ".join(p for p in accepted if p != "seed") or "none"
        raise ValueError(
            f"unknown option(s) {unknown} for combiner {name!r}; valid options: {valid}"
        )
    if "seed" in accepted:
        options["seed"] = seed
    combiner = cls(**options)
    if tasks is not None:
        combiner.declare_tasks(tasks)
    return combiner


__all__ = ["COMBINER_NAMES", "ColumnGroups", "Combination", "Combiner", "EpochEnd",
           "GramianCombiner", "LossWeighting", "LossesAfterStep", "NonFiniteInput",
           "TrainingEvent", "get_combiner"]
