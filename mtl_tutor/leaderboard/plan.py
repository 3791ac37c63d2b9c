"""The runs a profile asks for, in the order they run, and what each is expected to cost.

Order: the baseline, then the recipes of the claims (in ``claims.toml``'s order), then every
other recipe (in the order of the recipe files); each with the profile's ``seeds`` when the
leaderboard compares it (the baseline and the claims' recipes), else ``other_seeds``.
``--only`` picks runs by name, by recipe file name (all its combiners), or ``claims`` / ``others``.

The expected minutes of a run not yet recorded come from the profile's cost model:
``setup + steps * step_seconds * factor + (evaluations + 1) * evaluation_seconds`` (the extra pass
predicts the dev sets for the record), where ``factor`` is the recipe's step time over the
baseline's round-robin step as ``bench/recipe_step_cost.py`` measured it
(``results/bench/recipe_step_cost.json``), or, unmeasured, the task batches of an average step
over the baseline's three. A recorded run shows the wall time it took.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..data import get_sampler, load_task
from ..run_config import TrainConfig
from .claims import Claim
from .profiles import CostModel, Profile
from .recipes import Recipe, check_recipe, resolve
from .records import record_path
from .runs import LeaderboardRun
from .verdicts import read_bench

STEP_COST_BENCH = "recipe_step_cost"
BASELINE_BATCHES = 3  # task batches in a step of the baseline (round-robin over three tasks)
SELECTIONS = ("claims", "others")


@dataclass(frozen=True)
class Board:
    """A leaderboard under one profile: its recipes, claims and every run they ask for."""

    profile: Profile
    recipes: list[Recipe]
    claims: list[Claim]
    baseline: str
    runs: list[LeaderboardRun]
    changes: dict  # --set: TrainConfig fields over every run

    @property
    def compared(self) -> set[str]:
        """The recipes the leaderboard compares: the baseline and the claims' recipes."""
        return {self.baseline} | {r for c in self.claims for r in c.recipes}


def ordered_recipes(recipes: Sequence[Recipe], claims: Sequence[Claim],
                    baseline: str) -> list[Recipe]:
    """The baseline, the claims' recipes in claim order, then the others in file order."""
    by_name = {r.name: r for r in recipes}
    first = list(dict.fromkeys([baseline, *(n for c in claims for n in c.recipes)]))
    return [by_name[n] for n in first] + [r for r in recipes if r.name not in first]


def plan_board(profile: Profile, recipes: Sequence[Recipe], claims: Sequence[Claim],
               baseline: str, data: str | Path, scratch: str | Path, results: str | Path,
               changes: Mapping | None = None, check: bool = True) -> Board:
    """Every run of the board, its config resolved (recipe, profile, the recipe's own profile
    changes, ``changes``); with ``check``, each recipe's model is built once on the tiny
    backbone so that a bad option stops everything before the first run."""
    names = {r.name for r in recipes}
    if baseline not in names:
        raise ValueError(f"--baseline: no recipe {baseline!r} among the recipes of --configs")
    runs = []
    compared = {baseline} | {r for c in claims for r in c.recipes}
    for recipe in ordered_recipes(recipes, claims, baseline):
        for i, seed in enumerate(profile.seeds_for(recipe.name in compared)):
            out = Path(scratch) / profile.name / recipe.name / f"seed{seed}"
            config = resolve(recipe, profile.name, profile.settings, changes,
                             data=str(data), out=str(out), seed=seed)
            if check and i == 0:
                check_recipe(config)
            runs.append(LeaderboardRun(recipe, profile.name, seed, config,
                                       record_path(results, profile.name, recipe.name, seed)))
    return Board(profile, list(recipes), list(claims), baseline, runs, dict(changes or {}))


def select_runs(board: Board, only: Iterable[str] = (), seeds: Iterable[int] = ()
                ) -> list[LeaderboardRun]:
    """The board's runs named by ``only`` (all when empty) and of ``seeds`` (all when empty)."""
    only, seeds = list(only), set(seeds)
    families = {r.family for r in board.recipes}
    names = {r.name for r in board.recipes}
    for token in only:
        if token not in SELECTIONS and token not in names and token not in families:
            raise ValueError(f"--only: {token!r} is no recipe, recipe file name, 'claims' or "
                             f"'others'; recipes: {', '.join(sorted(names))}")

    def chosen(run: LeaderboardRun) -> bool:
        name, compared = run.recipe.name, run.recipe.name in board.compared
        return (not only or name in only or run.recipe.family in only
                or ("claims" in only and compared) or ("others" in only and not compared))

    return [run for run in board.runs if chosen(run) and (not seeds or run.seed in seeds)]


def step_factors(bench_dir: str | Path) -> dict[str, float]:
    """Each recipe's median step time over the baseline's, as the step-cost bench measured."""
    bench = read_bench(bench_dir, STEP_COST_BENCH)
    if bench is None:
        return {}
    return {bench["reference"]: 1.0,
            **{n: statistics.median(r) for n, r in bench["ratios"].items()}}


def train_sizes(data: str | Path, tasks: Iterable[str]) -> dict[str, int]:
    """Training examples per task (rows the loader keeps)."""
    return {t: len(load_task(data, t, "train").examples) for t in tasks}


def run_shape(config: TrainConfig, sizes: Mapping[str, int]) -> tuple[int, int, float]:
    """(optimiser steps, evaluations, task batches per step on average) of a run."""
    sampler = get_sampler(config.sampler, {t: sizes[t] for t in config.tasks},
                          config.batch_size, seed=config.seed, **config.sampler_arguments())
    steps = sampler.total_steps(config.epochs)
    if config.max_steps is not None:
        steps = min(steps, config.max_steps)
    ends = {min(sampler.total_steps(e + 1), steps) for e in range(config.epochs)}
    evaluations = len(ends | {steps}) + (steps // config.eval_every if config.eval_every else 0)
    batches = sum(len(sampler.tasks_for_step(s)) for s in range(steps)) / steps
    return steps, evaluations, batches * config.accumulation_steps


def estimate_seconds(config: TrainConfig, sizes: Mapping[str, int], cost: CostModel,
                     factor: float | None) -> float:
    """Expected seconds of one run (see the module docstring)."""
    steps, evaluations, batches = run_shape(config, sizes)
    per_step = cost.step_seconds * (factor if factor is not None
                                     else batches / BASELINE_BATCHES)
    return cost.setup_seconds + steps * per_step + (evaluations + 1) * cost.evaluation_seconds
