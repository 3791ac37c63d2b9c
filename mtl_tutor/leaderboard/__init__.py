"""``mtl-tutor leaderboard``: the reports' recipes run under a budget profile, compared honestly.

- :mod:`.recipes` reads the recipe files (what is trained), :mod:`.profiles` the budget profiles
  (how long, which seeds), :mod:`.claims` the reports' claims and what tests each;
- :mod:`.plan` lists the runs a profile asks for, in order, with their expected cost;
- :mod:`.runs` trains one run in a scratch directory and keeps its record (:mod:`.records`)
  under ``results/leaderboard/PROFILE/``; finished runs are skipped;
- :mod:`.evidence` lines the records' dev predictions up with the gold labels and compares
  recipes with the paired bootstrap of :mod:`.bootstrap`; :mod:`.table` and :mod:`.verdicts`
  turn that into the leaderboard's rows and the claims' verdicts; :mod:`.report` writes them.

In a notebook::

    report = leaderboard_report("cpu")     # from the committed records, nothing trained
    report.rows, report.claims             # lists of dicts
    report.figure()                        # plotly figure
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go

from ..data.location import locate_data
from .claims import check_claim_recipes, load_claims
from .evidence import DevLabels, Evidence
from .plan import Board, estimate_seconds, plan_board, select_runs, step_factors, train_sizes
from .profiles import check_profile_names, get_profile
from .recipes import check_settings_keys, load_all
from .records import data_files, read_record, read_records
from .report import leaderboard_figure, write_report
from .runs import LeaderboardRun, execute, recorded_status
from .table import current_records, leaderboard_rows
from .verdicts import judge

BASELINE = "baseline_sum"
RESULTS, SCRATCH, BENCH = "results/leaderboard", "runs/leaderboard", "results/bench"


def beside_recipes(configs: Sequence[str | Path], name: str) -> Path:
    """``name`` in the first --configs directory (or beside the first recipe file named)."""
    first = Path(configs[0])
    return (first if first.is_dir() else first.parent) / name


def load_board(profile: str, configs: Sequence[str | Path] = ("configs",),
               data: str | Path = "", profiles: str | Path | None = None,
               claims: str | Path | None = None, baseline: str = BASELINE,
               scratch: str | Path = SCRATCH, results: str | Path = RESULTS,
               changes: Mapping | None = None, check: bool = False) -> Board:
    """The board of ``profile``: recipes, profile, claims and runs, everything checked
    (``check``: also build each recipe's model on the tiny backbone)."""
    recipes = load_all(configs)
    profiles = Path(profiles or beside_recipes(configs, "profiles.toml"))
    chosen = get_profile(profiles, profile)
    check_profile_names(recipes, profiles)
    claims_path = Path(claims or beside_recipes(configs, "claims.toml"))
    claim_list = load_claims(claims_path)
    check_claim_recipes(claim_list, [r.name for r in recipes], claims_path)
    if changes:
        check_settings_keys(changes, "--set")
    return plan_board(chosen, recipes, claim_list, baseline, data, scratch, results, changes,
                      check)


@dataclass
class Report:
    """The leaderboard's rows and the claims' rows (lists of dicts), and the header lines."""

    board: Board
    rows: list[dict]
    claims: list[dict]
    header: str
    claims_header: str

    def figure(self) -> go.Figure:
        return leaderboard_figure(self.rows)

    def write(self, out: str | Path) -> list[Path]:
        """leaderboard.md, .csv, .html (.png), claims.md and claims.csv in ``out``."""
        return write_report(self.rows, self.claims, Path(out), self.header, self.claims_header)


def _tasks(board: Board) -> list[str]:
    return list(dict.fromkeys(t for run in board.runs for t in run.config.tasks))


def budget_line(board: Board, data: Path, bench: str | Path, records: Mapping) -> str:
    """The profile's seeds and the expected hours of all its runs (recorded ones as measured)."""
    profile = board.profile
    recorded = [records[key]["wall_seconds"] for run in board.runs
                if (key := (run.recipe.name, run.seed)) in records]
    line = (f"Seeds {list(profile.seeds)} for the baseline ({board.baseline}) and the "
            f"{len(board.compared) - 1} recipes the claims compare, {list(profile.other_seeds)} "
            f"for the other {len(board.recipes) - len(board.compared)}: {len(board.runs)} runs")
    if profile.cost is not None:
        sizes, factors = train_sizes(data, _tasks(board)), step_factors(bench)
        expected = sum(estimate_seconds(run.config, sizes, profile.cost,
                                        factors.get(run.recipe.name))
                       for run in board.runs if (run.recipe.name, run.seed) not in records)
        line += (f", about {(expected + sum(recorded)) / 3600:.1f} hours in all on the machine "
                 f"the profile is sized for (recorded runs as measured, the others as `--plan` "
                 f"estimates them)")
    return line + f"; {len(recorded)} recorded so far, {sum(recorded) / 3600:.1f} hours."


def build_report(board: Board, data: str | Path | None = None, results: str | Path = RESULTS,
                 bench: str | Path = BENCH) -> Report:
    """The table and the claims from the records of the board's profile, nothing trained."""
    profile = board.profile
    records = read_records(results, profile.name)
    data_dir = locate_data(data, _tasks(board))
    digests = data_files(data_dir, _tasks(board))
    current, outdated = current_records(board, records, digests, data_dir, results)
    evidence = Evidence(current, DevLabels(data_dir), Path(results) / profile.name)
    rows = leaderboard_rows(board, evidence, outdated)
    claims = [judge(c, profile.name, evidence, bench) for c in board.claims]
    header = (f"# Leaderboard, profile `{profile.name}`\n\n{profile.description}\n\n"
              + budget_line(board, data_dir, bench, current))
    claims_header = (f"# The reports' claims, profile `{profile.name}`\n\n{profile.description}"
                     f"\n\nEach claim against the recipes (or the bench measurement) that test "
                     f"it; measured: the first recipe minus the second (a ratio for costs).")
    return Report(board, rows, claims, header, claims_header)


def leaderboard_report(profile: str = "cpu", configs: Sequence[str | Path] = ("configs",),
                       data: str | Path | None = None, results: str | Path = RESULTS,
                       bench: str | Path = BENCH, baseline: str = BASELINE) -> Report:
    """The report of a profile from its committed records (for notebooks: ``.rows``,
    ``.claims``, ``.figure()``)."""
    board = load_board(profile, configs, data or "", baseline=baseline, results=results)
    return build_report(board, data, results, bench)


def plan_lines(board: Board, runs: Sequence[LeaderboardRun], statuses: Mapping,
               data: Path, bench: str | Path) -> list[str]:
    """One line per run: its status and its expected minutes; then the total to go."""
    cost = board.profile.cost
    if cost is None:
        return [f"{run.label:<55} {statuses[run]}" for run in runs] + [
            f"profile {board.profile.name!r} has no cost model ([{board.profile.name}.cost] in "
            f"{board.profile.source}): no estimate"]
    sizes, factors = train_sizes(data, _tasks(board)), step_factors(bench)
    lines, total = [], 0.0
    for run in runs:
        if statuses[run] == "recorded":
            minutes = read_record(run.record)["wall_seconds"] / 60
            lines.append(f"{run.label:<55} recorded   {minutes:6.1f} min")
            continue
        factor = factors.get(run.recipe.name)
        minutes = estimate_seconds(run.config, sizes, cost, factor) / 60
        total += minutes
        mark = "" if factor is not None else "  (step cost not measured)"
        lines.append(f"{run.label:<55} to run    ~{minutes:6.1f} min{mark}")
    lines.append(f"{sum(s != 'recorded' for s in statuses.values())} of {len(runs)} runs to "
                 f"go: about {total / 60:.1f} hours")
    return lines


def run_leaderboard(board: Board, data: str | Path | None, only: Iterable[str] = (),
                    seeds: Iterable[int] = (), command: str = "", plan: bool = False,
                    bench: str | Path = BENCH, results: str | Path = RESULTS,
                    say: Callable[[str], None] = print) -> Report | None:
    """Train the selected runs of ``board`` that have no record yet (every record checked
    against its recipe first), then rebuild the report; with ``plan``, only say what would run
    and what it would cost."""
    data_dir = locate_data(data, _tasks(board))
    digests = data_files(data_dir, _tasks(board))
    runs = select_runs(board, only, seeds)
    statuses = {run: recorded_status(run, digests, data_dir) for run in runs}
    if plan:
        for line in plan_lines(board, runs, statuses, data_dir, bench):
            say(line)
        return None
    pending = [run for run in runs if statuses[run] == "to run"]
    say(f"{len(runs) - len(pending)} of {len(runs)} selected runs recorded; "
        f"{len(pending)} to train")
    for number, run in enumerate(pending, 1):
        say(f"[{number}/{len(pending)}] {run.label}: training in {run.config.out}")
        record = execute(run, digests, command)
        overall = (record["evaluations"][record["selected"]].get("overall")
                   if record["selected"] is not None else None)
        say(f"[{number}/{len(pending)}] {run.label}: recorded in {run.record}"
            + (f" (overall {overall:.4f}, {record['wall_seconds'] / 60:.1f} min)"
               if overall is not None else f" (diverged: {record['diverged']})"))
    return build_report(board, data_dir, results, bench)


__all__ = ["BASELINE", "Report", "build_report", "leaderboard_report",
           "load_board", "run_leaderboard"]
