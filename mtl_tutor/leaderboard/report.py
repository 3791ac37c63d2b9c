"""The leaderboard's files: the table and the claims table as Markdown and CSV, and a plot.

``leaderboard.md`` (ranked rows, then each recipe's difference from the baseline in every metric,
then what each recipe is), ``leaderboard.csv``, ``leaderboard.html`` / ``.png`` (overall dev
score per recipe, and its difference from the baseline with the 95% interval), ``claims.md`` and
``claims.csv``. Rows come from :mod:`~mtl_tutor.leaderboard.table` and
:mod:`~mtl_tutor.leaderboard.verdicts`; nothing here computes a number.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..viz import save_figure
from .bootstrap import CONFIDENCE, REPLICATES, Interval
from .table import METRICS, NOT_RUN

MEASURE_COLUMNS = (("minutes", "minutes", 1), ("steps_per_second", "steps/s", 2),
                   ("conflict", "conflict", 2), ("interventions", "interventions", 2))


def _cell(value: tuple[float, float | None] | None, digits: int) -> str:
    if value is None:
        return "—"
    mean, std = value
    return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def interval_text(interval: Interval | None, digits: int = 3) -> str:
    """``+0.012 [-0.004, +0.027]``, or — without one."""
    if interval is None:
        return "—"
    return (f"{interval.estimate:+.{digits}f} [{interval.low:+.{digits}f}, "
            f"{interval.high:+.{digits}f}]")


def _seeds(row: dict) -> str:
    text = f"{len(row['seeds'])}/{len(row['planned_seeds'])}"
    return text + (f" ({len(row['diverged'])} diverged)" if row["diverged"] else "")


def markdown_table(rows: Sequence[dict], header: str = "") -> str:
    """The leaderboard as Markdown (see the module docstring)."""
    columns = ["rank", "recipe", "seeds", *METRICS, "Δ overall vs baseline (95%)", "verdict",
               *(title for _, title, _ in MEASURE_COLUMNS)]
    lines = [header, ""] if header else []
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        name = f"**{row['name']}** (baseline)" if row["baseline"] else row["name"]
        verdict = row["verdict"]
        if not row["seeds"]:
            verdict = f"{row['status']}: `{row['command']}`" if row["status"] == NOT_RUN \
                else row["status"]
        difference = row["difference"]["overall"] if row["difference"] else None
        cells = [str(row["rank"] or "—"), name, _seeds(row),
                 *(_cell(row["metrics"][m], 4) for m in METRICS), interval_text(difference),
                 verdict, *(_cell(row[key], digits) for key, _, digits in MEASURE_COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "", f"Mean ± sample standard deviation over the finished seeds (seeds: finished of "
            f"planned), each seed's model selected by its best dev overall. Δ: the recipe minus "
            f"the baseline on the seeds both have, with the {CONFIDENCE:.0%} interval of a paired "
            f"bootstrap over dev examples and those seeds ({REPLICATES:,} replicates, "
            f"`mtl_tutor.leaderboard.bootstrap`); verdict: better or worse when the interval "
            f"excludes 0, else not distinguishable at this budget. minutes: wall time of a run "
            f"(evaluations and the dev predictions included); conflict: share of steps in which "
            f"two task gradients had a negative cosine; interventions: share of steps in which "
            f"PCGrad or GradVac altered a task gradient (— where a run logged none: loss "
            f"weightings take one backward pass).", "",
        "## Differences from the baseline, every metric", "",
        "| recipe | common seeds | " + " | ".join(f"Δ {m}" for m in METRICS) + " |",
        "|" + "---|" * (len(METRICS) + 2)]
    for row in rows:
        if row["difference"]:
            lines.append(f"| {row['name']} | {row['common_seeds']} | " + " | ".join(
                interval_text(row["difference"][m]) for m in METRICS) + " |")
    lines += ["", "## The recipes", ""]
    for row in rows:
        claim = f" *Tests: {row['claim']}*" if row["claim"] else ""
        lines.append(f"- **{row['name']}** ({row['status']}): {row['description']}{claim}")
    return "\n".join(lines) + "\n"


def claims_markdown(claims: Sequence[dict], header: str = "") -> str:
    """The claims table as Markdown: each claim, its test, our measurement and the verdict."""
    lines = [header, ""] if header else []
    lines += ["| report | claim | test | metric | measured | interval | verdict |",
              "|---|---|---|---|---|---|---|"]
    for c in claims:
        measured = "—" if c["measured"] is None else (
            f"{c['measured']:+.3f}" if c["interval"] != "range" else f"{c['measured']:.2f}x")
        seeds = f"{c['seeds']} seed" + ("s" if c["seeds"] != 1 else "")
        interval = "—" if c["low"] is None else (
            f"[{c['low']:+.3f}, {c['high']:+.3f}] ({c['interval']}, {seeds})"
            if c["interval"] != "range" else f"[{c['low']:.2f}x, {c['high']:.2f}x] (range)")
        lines.append(f"| {c['report']} | {c['claim']} | {c['test']} | {c['metric']} | "
                     f"{measured} | {interval} | {c['verdict']} |")
    lines += ["", "What would confirm each claim, and notes:", ""]
    for c in claims:
        detail = f" {c['detail']}." if c["detail"] else ""
        lines.append(f"- **{c['claim']}** ({c['report']}): {c['confirms']}.{detail}")
    return "\n".join(lines) + "\n"


def write_table_csv(rows: Sequence[dict], path: Path) -> None:
    """The leaderboard's numbers, one row per recipe."""
    measures = [key for key, _, _ in MEASURE_COLUMNS]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "name", "status", "seeds", "planned_seeds", "diverged",
                         *(f"{m}_{s}" for m in (*METRICS, *measures) for s in ("mean", "std")),
                         *(f"delta_{m}_{s}" for m in METRICS for s in ("estimate", "low", "high")),
                         "common_seeds", "verdict"])
        for row in rows:
            values = [row["metrics"][m] for m in METRICS] + [row[k] for k in measures]
            differences = [row["difference"][m] if row["difference"] else None for m in METRICS]
            writer.writerow([
                row["rank"] or "", row["name"], row["status"], len(row["seeds"]),
                len(row["planned_seeds"]), len(row["diverged"]),
                *("" if x is None else x for v in values for x in (v or (None, None))),
                *("" if d is None else x for d in differences
                  for x in ((d.estimate, d.low, d.high) if d else (None,) * 3)),
                row["common_seeds"], row["verdict"]])


def write_claims_csv(claims: Sequence[dict], path: Path) -> None:
    keys = ("id", "report", "claim", "test", "metric", "measured", "low", "high", "interval",
            "seeds", "verdict", "confirms", "detail")
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(claims)


def leaderboard_figure(rows: Sequence[dict]) -> go.Figure:
    """Left: each run recipe's overall dev score (mean, the seeds' standard deviation as error
    bars). Right: its difference from the baseline with the 95% interval."""
    scored = [row for row in rows if row["metrics"]["overall"]][::-1]  # best at the top
    names = [row["name"] for row in scored]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=("overall (mean ± std over seeds)",
                                        f"Δ overall vs baseline ({CONFIDENCE:.0%} interval)"))
    fig.add_trace(go.Bar(
        x=[row["metrics"]["overall"][0] for row in scored], y=names, orientation="h",
        error_x={"type": "data", "array": [row["metrics"]["overall"][1] or 0.0
                                           for row in scored]},
        hovertemplate="%{y}<br>overall %{x:.4f}<extra></extra>", showlegend=False), 1, 1)
    compared = [row for row in scored if row["difference"]]
    fig.add_trace(go.Scatter(
        x=[row["difference"]["overall"].estimate for row in compared],
        y=[row["name"] for row in compared], mode="markers",
        error_x={"type": "data", "symmetric": False,
                 "array": [row["difference"]["overall"].high
                           - row["difference"]["overall"].estimate for row in compared],
                 "arrayminus": [row["difference"]["overall"].estimate
                                - row["difference"]["overall"].low for row in compared]},
        text=[row["verdict"] for row in compared],
        hovertemplate="%{y}<br>Δ %{x:+.4f}<br>%{text}<extra></extra>", showlegend=False), 1, 2)
    fig.add_vline(x=0, line_dash="dot", row=1, col=2)
    fig.update_layout(title="Leaderboard: overall = (sst_acc + para_acc + (sts_pearson + 1) / 2)"
                            " / 3 on dev", height=max(400, 28 * len(scored) + 150))
    return fig


def write_report(rows: Sequence[dict], claims: Sequence[dict], out: Path,
                 header: str = "", claims_header: str = "") -> list[Path]:
    """Write the files of the module docstring into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "leaderboard.md").write_text(markdown_table(rows, header), encoding="utf-8")
    write_table_csv(rows, out / "leaderboard.csv")
    (out / "claims.md").write_text(claims_markdown(claims, claims_header), encoding="utf-8")
    write_claims_csv(claims, out / "claims.csv")
    written = [out / n for n in ("leaderboard.md", "leaderboard.csv", "claims.md", "claims.csv")]
    return written + save_figure(leaderboard_figure(rows), out / "leaderboard", plotly_js="cdn")
