"""The leaderboard table as data: one row per recipe of the board, run or not.

A row holds the recipe's status (every planned seed recorded, some, none, or records made with
settings the recipe no longer has), the mean and sample standard deviation over its finished
seeds of each dev metric of the selected models and of the run measures, and its difference
from the baseline in each metric with the paired bootstrap's 95% interval (examples and the
seeds both have) and a verdict. Rows are ranked by mean overall; rows without one follow.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from .evidence import Evidence
from .plan import Board
from .recipes import resolve
from .records import check_data, config_differences, record_path

METRICS = ("sst_acc", "para_acc", "sts_pearson", "overall")
NOT_RUN = "not run yet"


def mean_std(values: Sequence[float | None]) -> tuple[float, float | None] | None:
    """(mean, sample standard deviation) of the values given; std None for one value."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def current_records(board: Board, records: Mapping[tuple[str, int], dict], data: Mapping,
                    data_dir: str | Path, results: str | Path
                    ) -> tuple[dict, dict[str, list[str]]]:
    """(the records that stand for the board's recipes as they are now, the settings in which
    the others differ, by recipe). A record of a recipe that no longer exists, or made on other
    data files (``data``: :func:`~mtl_tutor.leaderboard.records.data_files` of ``data_dir``),
    is refused by name."""
    recipes = {r.name: r for r in board.recipes}
    current, outdated = {}, {}
    for (name, seed), record in records.items():
        if name not in recipes:
            raise ValueError(f"a record of recipe {name!r} (seed {seed}) is under profile "
                             f"{board.profile.name!r}, but no recipe of --configs has that name; "
                             f"move the record away or restore the recipe")
        planned = next((run.config for run in board.runs
                        if run.recipe.name == name and run.seed == seed), None)
        if planned is None:  # a seed the profile does not ask for: still a valid run
            template = next(run.config for run in board.runs if run.recipe.name == name)
            planned = resolve(recipes[name], board.profile.name, board.profile.settings,
                              board.changes, data=template.data, out=template.out, seed=seed)
        where = str(record_path(results, board.profile.name, name, seed))
        check_data(record, data, data_dir, where)
        differences = config_differences(record, planned)
        if differences:
            outdated.setdefault(name, []).append(f"seed {seed}: {', '.join(differences)}")
        else:
            current[name, seed] = record
    return current, outdated


def run_measures(record: Mapping) -> dict[str, float | None]:
    """A record's run-level measures: minutes, steps/s, peak memory, the share of steps with a
    negative cosine between two task gradients, and of steps where a gradient surgery
    intervened."""
    epochs = record["epochs"]
    paired = sum(e["pair_steps"] for e in epochs)
    surgery = sum(e["surgery_steps"] for e in epochs)
    return {
        "minutes": record["wall_seconds"] / 60,
        "steps_per_second": record["steps_per_second"],
        "peak_memory_mib": record["peak_memory_mib"],
        "conflict": sum(e["any_pair"] * e["pair_steps"] for e in epochs if e["pair_steps"])
        / paired if paired else None,
        "interventions": sum(e["intervention_steps"] for e in epochs if e["surgery_steps"])
        / surgery if surgery else None,
    }


def run_command(profile: str, name: str) -> str:
    return f"mtl-tutor leaderboard --profile {profile} --only {name}"


def leaderboard_rows(board: Board, evidence: Evidence,
                     outdated: Mapping[str, list[str]]) -> list[dict]:
    """The rows of the table (see the module docstring)."""
    rows = []
    baseline = board.baseline
    for recipe in board.recipes:
        name = recipe.name
        planned = [run.seed for run in board.runs if run.recipe is recipe]
        finished = evidence.finished(name)
        diverged = evidence.diverged(name)
        done = set(finished) | set(diverged)
        if not done:
            status = f"outdated ({'; '.join(outdated[name])})" if name in outdated else NOT_RUN
        elif set(planned) <= done:
            status = "complete"
        else:
            status = f"{len(set(planned) & done)} of {len(planned)} seeds"
        selected = [r["evaluations"][r["selected"]] for r in finished.values()]
        measures = [run_measures(r) for r in finished.values()]
        difference = None if name == baseline else evidence.compare(name, baseline)
        rows.append({
            "name": name, "description": recipe.description, "claim": recipe.claim,
            "baseline": name == baseline, "compared": name in board.compared,
            "status": status, "planned_seeds": planned, "seeds": sorted(finished),
            "diverged": diverged, "outdated": outdated.get(name, []),
            "metrics": {m: mean_std([e.get(m) for e in selected]) for m in METRICS},
            **{k: mean_std([m[k] for m in measures]) for k in
               ("minutes", "steps_per_second", "peak_memory_mib", "conflict", "interventions")},
            "difference": difference,
            "common_seeds": len(evidence.common_seeds(name, baseline)) if difference else 0,
            "verdict": difference["overall"].verdict() if difference else "",
            "command": run_command(board.profile.name, name),
        })
    scored = sorted((r for r in rows if r["metrics"]["overall"]),
                    key=lambda r: -r["metrics"]["overall"][0])
    for rank, row in enumerate(scored, 1):
        row["rank"] = rank
    unscored = [r for r in rows if not r["metrics"]["overall"]]
    for row in unscored:
        row["rank"] = None
    return scored + unscored

