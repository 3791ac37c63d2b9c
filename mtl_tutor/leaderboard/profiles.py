"""Budget profiles: a recipe says what is trained, a profile says for how long and how often.

``configs/profiles.toml`` holds one table per profile::

    [cpu]
    description = "..."            # the budget in words, printed above the table
    seeds = [0, 1, 2]              # the baseline's and every recipe a claim compares
    other_seeds = [0]              # every other recipe
    [cpu.settings]                 # TrainConfig fields over every recipe (mappings merge)
    epochs = 1
    sampler_options = {epoch_length = "sts"}
    [cpu.cost]                     # optional: what --plan multiplies, seconds measured
    step_seconds = 2.2             #   one round-robin step of the baseline recipe
    evaluation_seconds = 40        #   one pass over the dev sets
    setup_seconds = 30             #   loading data and backbone, building the run

A recipe's own ``[profiles.cpu]`` table then changes what the budget forces it to change
(:mod:`~mtl_tutor.leaderboard.recipes`). Every key is checked; errors name the file and key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..options import Bounds, OptionError, convert
from .recipes import NAME_PATTERN, Recipe, check_settings_keys, read_toml

PROFILE_KEYS = ("description", "seeds", "other_seeds", "settings", "cost")
COST_KEYS = ("step_seconds", "evaluation_seconds", "setup_seconds")


@dataclass(frozen=True)
class CostModel:
    """Seconds measured on the machine a profile is sized for (see :mod:`.plan`)."""

    step_seconds: float       # one round-robin step of the baseline recipe, 3 tasks
    evaluation_seconds: float  # one evaluation on every dev set
    setup_seconds: float      # reading the data, loading the backbone, building the run


@dataclass(frozen=True)
class Profile:
    """A named budget: seeds, settings over every recipe, and its cost model."""

    name: str
    description: str
    seeds: tuple[int, ...]
    other_seeds: tuple[int, ...]
    settings: dict[str, Any]
    cost: CostModel | None  # None: not measured, so --plan cannot estimate
    source: Path

    def seeds_for(self, compared: bool) -> tuple[int, ...]:
        """The seeds of a recipe: ``seeds`` when the leaderboard compares it (the baseline and
        the recipes of the claims), else ``other_seeds``."""
        return self.seeds if compared else self.other_seeds


def _seeds(raw: Any, option: str) -> tuple[int, ...]:
    seeds = convert(raw, tuple[int, ...], option, Bounds(ge=0))
    if not seeds or len(set(seeds)) != len(seeds):
        raise OptionError(option, f"must be a non-empty list of distinct seeds, got {raw!r}")
    return seeds


def load_profiles(path: str | Path) -> dict[str, Profile]:
    """The profiles of a profiles.toml file, by name."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such profiles file (a table per budget profile, "
                                f"see mtl_tutor.leaderboard.profiles)")
    profiles = {}
    for name, raw in read_toml(path).items():
        where = f"{path} [{name}]"
        if not re.fullmatch(NAME_PATTERN, name) or not isinstance(raw, dict):
            raise ValueError(f"{where}: a profile is a table named with letters, digits, "
                             f"'_', '.' or '-'")
        unknown = [k for k in raw if k not in PROFILE_KEYS]
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r}; valid keys: "
                             f"{', '.join(PROFILE_KEYS)}")
        try:
            description = convert(raw.get("description", ""), str, "description").strip()
            if not description:
                raise OptionError("description", "must say what the budget is")
            seeds = _seeds(raw.get("seeds"), "seeds")
            other_seeds = _seeds(raw.get("other_seeds", list(seeds)), "other_seeds")
            settings = convert(raw.get("settings", {}), dict[str, Any], "settings")
            cost = convert(raw.get("cost"), dict[str, float] | None, "cost", Bounds(gt=0))
            if cost is not None and sorted(cost) != sorted(COST_KEYS):
                raise OptionError("cost", f"must give exactly {', '.join(COST_KEYS)}, got "
                                          f"{', '.join(cost)}")
        except OptionError as e:
            raise ValueError(f"{where}: {e}") from e
        check_settings_keys(settings, f"{where} settings")
        profiles[name] = Profile(name, description, seeds, other_seeds, settings,
                                 None if cost is None else CostModel(**cost), path)
    if not profiles:
        raise ValueError(f"{path}: no profile tables")
    return profiles


def get_profile(path: str | Path, name: str) -> Profile:
    """Profile ``name`` of the file ``path``; an unknown name lists the file's profiles."""
    profiles = load_profiles(path)
    if name not in profiles:
        raise ValueError(f"--profile: no profile {name!r} in {path}; profiles: "
                         f"{', '.join(profiles)}")
    return profiles[name]


def check_profile_names(recipes: Iterable[Recipe], path: str | Path) -> None:
    """Refuse a recipe's ``[profiles.NAME]`` for a profile the file ``path`` does not define."""
    defined = load_profiles(path)
    for recipe in recipes:
        unknown = sorted(set(recipe.profile_settings) - set(defined))
        if unknown:
            raise ValueError(f"{recipe.source}: [profiles.{unknown[0]}] names no profile of "
                             f"{path} ({', '.join(defined)})")
