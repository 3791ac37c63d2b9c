"""``mtl-tutor leaderboard``: named training recipes from TOML files, run over seeds, compared.

Three parts: :mod:`~mtl_tutor.leaderboard.recipes` reads and checks the recipe files,
:mod:`~mtl_tutor.leaderboard.runs` trains each seed (or reuses its recorded result) and measures
it, :mod:`~mtl_tutor.leaderboard.report` aggregates the seeds as mean ± sample standard deviation
into ``OUT/leaderboard.md``, ``OUT/leaderboard.csv`` and ``OUT/leaderboard.html``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .recipes import apply_overrides, check_recipe, load_recipes, recipe_files
from .report import aggregate, score, write_report
from .runs import run_once


def run_leaderboard(configs: Sequence[str | Path], data: str | Path, out: str | Path,
                    overrides: dict | None = None) -> list[dict]:
    """Run every recipe of ``configs`` for each of its seeds, skipping finished runs, and write
    the leaderboard into ``out``. Every recipe is checked before the first run starts."""
    out = Path(out)
    recipes = []
    for path in recipe_files(configs):
        for recipe in load_recipes(path):
            try:
                config = apply_overrides(recipe.config, overrides or {})
                check_recipe(config)
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path} ({recipe.name}): {e}") from e
            recipes.append(replace(recipe, config=config))
    names = [r.name for r in recipes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"--configs: run names {duplicates} appear more than once")
    total, done, rows = sum(len(r.seeds) for r in recipes), 0, []
    for recipe in recipes:
        results = []
        for seed in recipe.seeds:
            config = replace(recipe.config, data=str(Path(data).resolve()), seed=seed,
                             out=str(out / recipe.name / f"seed{seed}"))
            result, trained = run_once(recipe, config)
            done += 1
            print(f"[{done}/{total}] {recipe.name} seed {seed}: "
                  f"{'trained' if trained else 'skipped (finished before)'}", flush=True)
            results.append(result)
        rows.append(aggregate(recipe, results))
    rows.sort(key=score, reverse=True)
    write_report(rows, out)
    return rows


__all__ = ["run_leaderboard"]
