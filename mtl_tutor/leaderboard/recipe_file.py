"""``mtl-tutor train --recipe FILE [--profile NAME] [flags]``: one run from a recipe file.

The run's settings are the recipe's, under profile NAME of the ``profiles.toml`` beside the file
when ``--profile`` is given (the profile's settings, then the recipe's own ``[profiles.NAME]``),
then every flag given on the command line (:func:`~mtl_tutor.leaderboard.recipes.apply_changes`:
mappings such as ``--head-opt`` merge into the recipe's, ``--combiner`` naming another combiner
drops the recipe's combiner options). A file with a ``combiners`` list holds one run per
combiner: ``--combiner`` picks one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..run_config import TrainConfig
from .profiles import check_profile_names, get_profile
from .recipes import load_recipes, resolve


def recipe_config(path: str | Path, profile: str | None, flags: Mapping) -> TrainConfig:
    """The TrainConfig of ``mtl-tutor train --recipe path [--profile profile]`` with ``flags``
    (the TrainConfig fields the command line gave)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--recipe: no such file {path}")
    recipes = load_recipes(path)
    if len(recipes) > 1:
        combiners = [r.config.combiner for r in recipes]
        if flags.get("combiner") not in combiners:
            raise ValueError(f"--recipe: {path} holds one run per combiner "
                             f"({', '.join(combiners)}); choose one with --combiner")
        recipes = [r for r in recipes if r.config.combiner == flags["combiner"]]
    (recipe,) = recipes
    profile_settings = {}
    if profile is not None:
        profiles = path.parent / "profiles.toml"
        profile_settings = get_profile(profiles, profile).settings
        check_profile_names([recipe], profiles)
    return resolve(recipe, profile, profile_settings, flags)
