"""Leaderboard recipes: named training runs in TOML files, checked before anything trains.

A recipe file (``configs/*.toml``) holds any :class:`~mtl_tutor.run_config.TrainConfig` fields
except ``data``, ``out`` and ``seed`` (the leaderboard sets those), plus

- ``name``: the run's name and directory (letters, digits, ``_ . -``);
- ``description``: what the recipe is, in a sentence or two;
- ``claim`` (optional): which report's claim the run tests;
- ``seeds`` (default ``[0, 1, 2]``): one run per seed;
- ``combiners`` (optional, instead of ``combiner``): one run per combiner, named NAME-COMBINER.

A bad value gets the error TrainConfig gives it in Python, prefixed by the file's path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path

from ..bert import load_backbone
from ..model import build_model
from ..run_config import TrainConfig

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

RECIPE_KEYS = ("name", "description", "claim", "seeds", "combiners")
SET_BY_LEADERBOARD = ("data", "out", "seed")
CONFIG_KEYS = tuple(f.name for f in fields(TrainConfig) if f.name not in SET_BY_LEADERBOARD)


@dataclass(frozen=True)
class Recipe:
    """One named run of the leaderboard (a file, or one combiner of a file's ``combiners``)."""

    name: str
    description: str
    claim: str
    seeds: tuple[int, ...]
    config: TrainConfig  # data, out and seed are filled in per run
    source: Path


def recipe_files(paths: Iterable[str | Path]) -> list[Path]:
    """The TOML files named, a directory standing for the ``*.toml`` files in it."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(path.glob("*.toml"))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"--configs: {path} is neither a file nor a directory")
    if not files:
        raise ValueError(f"--configs: no .toml files in {[str(p) for p in paths]}")
    return files


def load_recipes(path: str | Path) -> list[Recipe]:
    """The runs of one recipe file; errors name the file and the offending key."""
    path = Path(path)
    with open(path, "rb") as f:
        try:
            raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML ({e})") from e
    for key in raw:
        if key in SET_BY_LEADERBOARD:
            raise ValueError(f"{path}: key {key!r} is set by the leaderboard (--data, --out, "
                             f"seeds); remove it")
        if key not in RECIPE_KEYS and key not in CONFIG_KEYS:
            raise ValueError(f"{path}: unknown key {key!r}; valid keys: "
                             f"{', '.join(RECIPE_KEYS + CONFIG_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"{path}: name must be letters, digits, '_', '.' or '-', got {name!r}")
    if not isinstance(raw.get("description"), str) or not raw["description"].strip():
        raise ValueError(f"{path}: description must be a non-empty string")
    seeds = raw.get("seeds", [0, 1, 2])
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise ValueError(f"{path}: seeds must be a non-empty list of distinct integers, "
                         f"got {seeds!r}")
    values = {k: v for k, v in raw.items() if k in CONFIG_KEYS}
    combiners = raw.get("combiners")
    if combiners is not None:
        if "combiner" in raw:
            raise ValueError(f"{path}: give combiner or combiners, not both")
        if not isinstance(combiners, list) or not combiners or \
                len(set(combiners)) != len(combiners):
            raise ValueError(f"{path}: combiners must be a non-empty list of distinct names")
    runs = [(name, values)] if combiners is None else [
        (f"{name}-{c}", {**values, "combiner": c}) for c in combiners]
    recipes = []
    for run_name, run_values in runs:
        try:
            config = TrainConfig(**run_values)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from e
        recipes.append(Recipe(run_name, raw["description"].strip(), raw.get("claim", ""),
                              tuple(seeds), config, path))
    return recipes


def apply_overrides(config: TrainConfig, overrides: dict) -> TrainConfig:
    """``config`` with ``--set`` values (TrainConfig fields) replaced."""
    for key in overrides:
        if key not in CONFIG_KEYS:
            raise ValueError(f"--set: unknown key {key!r}; valid keys: {', '.join(CONFIG_KEYS)}")
    return replace(config, **overrides)


def check_recipe(config: TrainConfig) -> None:
    """Build the recipe's model (heads, losses, PALs) around the tiny backbone without
    training, so that a bad option fails before any run starts (the combiner and the sampler
    are built when the config is made)."""
    bert, _ = load_backbone("tiny")
    build_model(bert, config)
