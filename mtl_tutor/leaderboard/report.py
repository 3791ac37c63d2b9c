"""The leaderboard's report: seeds aggregated as mean ± sample standard deviation, written as a
Markdown table, a CSV file and an HTML (and PNG) bar chart of the overall dev score."""

from __future__ import annotations

import csv
import statistics
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go

from ..viz import save_figure
from ..viz.reports import LEADERBOARD_COLUMNS
from .recipes import Recipe

MEASURES = ("wall_seconds", "steps_per_second", "peak_memory_mib", "conflict_fraction")


def mean_std(values: Sequence[float | None]) -> tuple[float, float | None] | None:
    """(mean, sample standard deviation) of the values given; std None for one value."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def aggregate(recipe: Recipe, results: Sequence[dict]) -> dict:
    """One leaderboard row: mean and std over the seeds that did not diverge of every metric
    and measure."""
    finished = [r for r in results if not r["diverged"]]
    metrics = list(dict.fromkeys(k for r in finished for k in r["metrics"]))
    epochs = sorted({int(e) for r in finished for e in r["changed_fraction_per_epoch"]})
    return {
        "name": recipe.name, "claim": recipe.claim, "description": recipe.description,
        "seeds": len(results), "diverged": len(results) - len(finished),
        "metrics": {k: mean_std([r["metrics"].get(k) for r in finished]) for k in metrics},
        **{k: mean_std([r[k] for r in finished]) for k in MEASURES},
        "changed_per_epoch": [mean_std([r["changed_fraction_per_epoch"].get(str(e))
                                        for r in finished]) for e in epochs],
    }


def score(row: dict) -> float:
    """A row's mean overall dev score (-inf without one): the leaderboard's order."""
    overall = row["metrics"].get("overall")
    return overall[0] if overall else float("-inf")


def _cell(value: tuple[float, float | None] | None, digits: int) -> str:
    if value is None:
        return "—"
    mean, std = value
    return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def metric_names(rows: Sequence[dict]) -> list[str]:
    names = list(dict.fromkeys(k for row in rows for k in row["metrics"]))
    return sorted(names, key=lambda k: (LEADERBOARD_COLUMNS.index(k)
                                        if k in LEADERBOARD_COLUMNS else len(LEADERBOARD_COLUMNS)))


def markdown_table(rows: Sequence[dict]) -> str:
    """The leaderboard as Markdown: the table (best overall first), then what each run is."""
    metrics = metric_names(rows)
    header = ["rank", "run", "seeds", *metrics, "wall (s)", "steps/s", "peak memory (MiB)",
              "conflict", "changed > 1% per epoch"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, row in enumerate(rows, 1):
        changed = " / ".join(_cell(v, 2) for v in row["changed_per_epoch"]) or "—"
        seeds = str(row["seeds"]) + (f" ({row['diverged']} diverged)" if row["diverged"] else "")
        cells = [str(rank), row["name"], seeds,
                 *(_cell(row["metrics"].get(m), 4) for m in metrics),
                 _cell(row["wall_seconds"], 1), _cell(row["steps_per_second"], 2),
                 _cell(row["peak_memory_mib"], 0), _cell(row["conflict_fraction"], 2), changed]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Mean ± sample standard deviation over the seeds. conflict: fraction of steps "
              "with a pair of task gradients at a negative cosine; changed: per epoch, fraction "
              "of steps where |d - sum g| > 1% |sum g| (— where no per-task gradients were "
              "logged). A diverged seed (NaN or infinite loss) counts in no column.", ""]
    for row in rows:
        claim = f" *Tests: {row['claim']}*" if row["claim"] else ""
        lines.append(f"- **{row['name']}**: {row['description']}{claim}")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[dict], path: Path) -> None:
    metrics = metric_names(rows)
    epochs = max((len(row["changed_per_epoch"]) for row in rows), default=0)
    measures = [*metrics, *MEASURES, *(f"changed_epoch{e}" for e in range(epochs))]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "claim", "seeds",
                         *(f"{m}_{s}" for m in measures for s in ("mean", "std"))])
        for row in rows:
            values = [*(row["metrics"].get(m) for m in metrics), *(row[m] for m in MEASURES),
                      *(row["changed_per_epoch"][e] if e < len(row["changed_per_epoch"])
                        else None for e in range(epochs))]
            writer.writerow([row["name"], row["claim"], row["seeds"],
                             *("" if x is None else x
                               for v in values for x in (v if v else (None, None)))])


def leaderboard_figure(rows: Sequence[dict]) -> go.Figure:
    """Overall dev score of each run (mean, with the seeds' standard deviation as error bars)."""
    scored = [row for row in rows if row["metrics"].get("overall")][::-1]  # best at the top
    speed = [row["steps_per_second"][0] if row["steps_per_second"] else float("nan")
             for row in scored]
    fig = go.Figure(go.Bar(
        x=[row["metrics"]["overall"][0] for row in scored], y=[row["name"] for row in scored],
        orientation="h", customdata=speed,
        error_x={"type": "data",
                 "array": [row["metrics"]["overall"][1] or 0.0 for row in scored]},
        hovertemplate="%{y}<br>overall %{x:.4f}<br>%{customdata:.2f} steps/s<extra></extra>",
    ))
    fig.update_layout(title="Leaderboard: overall dev score (mean ± std over seeds)",
                      xaxis_title="overall = (sst_acc + para_acc + (sts_pearson + 1) / 2) / 3",
                      height=max(400, 28 * len(scored) + 150))
    return fig


def write_report(rows: Sequence[dict], out: Path) -> None:
    """``OUT/leaderboard.md``, ``leaderboard.csv`` and ``leaderboard.html`` (rows ranked)."""
    (out / "leaderboard.md").write_text(markdown_table(rows), encoding="utf-8")
    write_csv(rows, out / "leaderboard.csv")
    save_figure(leaderboard_figure(rows), out / "leaderboard")
