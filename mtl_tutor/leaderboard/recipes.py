"""Leaderboard recipes: named training runs in TOML files, checked before anything trains.

A recipe says *what* is trained; a budget profile (:mod:`~mtl_tutor.leaderboard.profiles`) says
for how long and over which seeds. A recipe file (``configs/*.toml``) holds any
:class:`~mtl_tutor.run_config.TrainConfig` fields except ``data``, ``out`` and ``seed`` (the
leaderboard sets those), plus

- ``name``: the run's name and directory (letters, digits, ``_ . -``);
- ``description``: what the recipe is, in a sentence or two;
- ``claim`` (optional): which report's claim the run tests;
- ``combiners`` (optional, instead of ``combiner``): one run per combiner, named NAME-COMBINER;
  ``combiner_options`` then maps a combiner of the list to its options
  (``combiner_options.gradvac = {target_update = "on-intervention"}``);
- ``[profiles.NAME]`` (optional): TrainConfig fields that change under profile NAME, where that
  budget forces a change to the recipe itself (the description says so).

A run's settings are the recipe's, then the profile's, then the recipe's own ``[profiles.NAME]``,
then the command line's, each merged into the one before by :func:`apply_changes`. A bad value
gets the error TrainConfig gives it in Python, prefixed by the file's path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..bert import load_backbone
from ..model import build_model
from ..options import OptionError
from ..run_config import TrainConfig

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

RECIPE_KEYS = ("name", "description", "claim", "combiners", "profiles")
SET_BY_LEADERBOARD = ("data", "out", "seed")
CONFIG_KEYS = tuple(f.name for f in fields(TrainConfig) if f.name not in SET_BY_LEADERBOARD)
NOT_RECIPES = ("profiles.toml", "claims.toml")  # configs/ files of another kind
NAME_PATTERN = r"[A-Za-z0-9_.-]+"


@dataclass(frozen=True)
class Recipe:
    """One named run of the leaderboard (a file, or one combiner of a file's ``combiners``).

    settings: the TrainConfig fields the recipe sets, as the file writes them;
    profile_settings: profile name -> the fields that change under that profile;
    config: the recipe's own TrainConfig (no profile; data, out and seed at their defaults).
    family: the file's ``name`` (the run's name without its combiner).
    """

    name: str
    description: str
    claim: str
    settings: dict[str, Any]
    profile_settings: dict[str, dict[str, Any]]
    config: TrainConfig
    source: Path
    family: str

    def settings_under(self, profile_name: str | None, profile_settings: Mapping) -> dict:
        """The run's settings under a profile: the recipe's, the profile's, then the recipe's
        own changes for that profile."""
        settings = apply_changes(self.settings, profile_settings)
        return apply_changes(settings, self.profile_settings.get(profile_name, {}))


def recipe_files(paths: Iterable[str | Path]) -> list[Path]:
    """The recipe files named, a directory standing for the ``*.toml`` files in it (but
    ``profiles.toml`` and ``claims.toml``)."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.glob("*.toml") if p.name not in NOT_RECIPES)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"--configs: {path} is neither a file nor a directory")
    if not files:
        raise ValueError(f"--configs: no recipe .toml files in {[str(p) for p in paths]}")
    return files


def read_toml(path: str | Path) -> dict:
    """A TOML file's contents; a syntax error names the file."""
    path = Path(path)
    with open(path, "rb") as f:
        try:
            return tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML ({e})") from e


def check_settings_keys(settings: Mapping, where: str) -> None:
    """Refuse keys that are no TrainConfig field a recipe may set."""
    for key in settings:
        if key in SET_BY_LEADERBOARD:
            raise ValueError(f"{where}: key {key!r} is set by the leaderboard (--data, --out, "
                             f"the profile's seeds); remove it")
        if key not in CONFIG_KEYS:
            raise ValueError(f"{where}: unknown key {key!r}; valid keys: "
                             f"{', '.join(RECIPE_KEYS + CONFIG_KEYS)}")


def load_recipes(path: str | Path) -> list[Recipe]:
    """The runs of one recipe file; errors name the file and the offending key."""
    path = Path(path)
    raw = read_toml(path)
    if "seeds" in raw:
        raise ValueError(f"{path}: key 'seeds' is set by the profile (configs/profiles.toml); "
                         f"remove it")
    check_settings_keys({k: v for k, v in raw.items() if k not in RECIPE_KEYS}, str(path))
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(f"{path}: name must be letters, digits, '_', '.' or '-', got {name!r}")
    if not isinstance(raw.get("description"), str) or not raw["description"].strip():
        raise ValueError(f"{path}: description must be a non-empty string")
    if not isinstance(raw.get("claim", ""), str):
        raise ValueError(f"{path}: claim must be a string")
    profiles = raw.get("profiles", {})
    if not isinstance(profiles, Mapping) or not all(isinstance(v, Mapping)
                                                    for v in profiles.values()):
        raise ValueError(f"{path}: profiles must hold tables [profiles.NAME] of settings")
    for profile, changes in profiles.items():
        check_settings_keys(changes, f"{path} [profiles.{profile}]")
    values = {k: v for k, v in raw.items() if k in CONFIG_KEYS}
    runs = [(name, values)]
    combiners = raw.get("combiners")
    if combiners is not None:
        if "combiner" in raw:
            raise ValueError(f"{path}: give combiner or combiners, not both")
        if not isinstance(combiners, list) or not combiners or \
                len(set(combiners)) != len(combiners):
            raise ValueError(f"{path}: combiners must be a non-empty list of distinct names")
        per_combiner = values.get("combiner_options", {})
        if not isinstance(per_combiner, Mapping) or \
                not all(isinstance(v, Mapping) for v in per_combiner.values()):
            raise ValueError(f"{path}: with combiners, combiner_options maps a combiner of the "
                             f"list to its options, e.g. combiner_options.gradvac = {{...}}")
        strangers = sorted(set(per_combiner) - set(combiners))
        if strangers:
            raise ValueError(f"{path}: combiner_options names {strangers}, not in combiners "
                             f"{combiners}")
        runs = [(f"{name}-{c}", {**values, "combiner": c,
                                 "combiner_options": dict(per_combiner.get(c, {}))})
                for c in combiners]
    recipes = []
    for run_name, settings in runs:
        try:
            config = TrainConfig(**settings)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from e
        recipes.append(Recipe(run_name, raw["description"].strip(), raw.get("claim", ""),
                              settings, {k: dict(v) for k, v in profiles.items()}, config, path,
                              name))
    return recipes


def load_all(configs: Iterable[str | Path]) -> list[Recipe]:
    """Every run of the recipe files of ``configs``; run names must be unique."""
    recipes = [r for path in recipe_files(configs) for r in load_recipes(path)]
    names = [r.name for r in recipes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"--configs: run names {duplicates} appear more than once")
    return recipes


def merge_settings(base: Mapping, changes: Mapping) -> dict:
    """``base`` with ``changes`` applied: a mapping merges key by key (recursively) into the
    mapping it meets, anything else replaces; a mapping naming another ``name`` (another head,
    loss) replaces the entry whole."""
    merged = dict(base)
    for key, value in changes.items():
        old = merged.get(key)
        if (isinstance(value, Mapping) and isinstance(old, Mapping)
                and value.get("name", old.get("name")) == old.get("name")):
            merged[key] = merge_settings(old, value)
        else:
            merged[key] = value
    return merged


def apply_changes(settings: Mapping, changes: Mapping) -> dict:
    """Settings with changes (a profile's, the command line's) applied by
    :func:`merge_settings`; a change of combiner drops the options of the one it replaces."""
    default = TrainConfig.__dataclass_fields__["combiner"].default
    if "combiner" in changes and changes["combiner"] != settings.get("combiner", default):
        settings = {k: v for k, v in settings.items() if k != "combiner_options"}
    return merge_settings(settings, changes)


def resolve(recipe: Recipe, profile_name: str | None, profile_settings: Mapping,
            changes: Mapping | None = None, **fixed) -> TrainConfig:
    """The TrainConfig of ``recipe`` under a profile, with ``changes`` (``--set``) applied and
    the ``fixed`` fields (data, out, seed) set; errors name the file and the profile."""
    settings = apply_changes(recipe.settings_under(profile_name, profile_settings),
                             changes or {})
    where = f"{recipe.source} ({recipe.name}" + (f", profile {profile_name})" if profile_name
                                                 else ")")
    try:
        return TrainConfig.from_dict({**settings, **fixed})
    except OptionError as e:
        if e.option.split(".")[0].split("[")[0] in (changes or {}):
            raise  # a changed value: the change is at fault, not the file
        raise ValueError(f"{where}: {e}") from e
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from e


def check_recipe(config: TrainConfig) -> None:
    """Build the recipe's model (heads, losses, PALs) around the tiny backbone without
    training, so that a bad option fails before any run starts (the combiner and the sampler
    are built when the config is made)."""
    bert, _ = load_backbone("tiny")
    build_model(bert, config)
