"""``mtl-tutor leaderboard``: named training recipes from TOML files, run over seeds, compared.

A recipe file (``configs/*.toml``) holds any :class:`~mtl_tutor.run_config.TrainConfig` fields
except ``data``, ``out`` and ``seed`` (the leaderboard sets those), plus

- ``name``: the run's name and directory (letters, digits, ``_ . -``);
- ``description``: what the recipe is, in a sentence or two;
- ``claim`` (optional): which report's claim the run tests;
- ``seeds`` (default ``[0, 1, 2]``): one run per seed;
- ``combiners`` (optional, instead of ``combiner``): one run per combiner, named NAME-COMBINER.

Each run trains into ``OUT/NAME/seedS`` and leaves ``result.json`` there: the best dev metrics,
the wall time of ``train`` (data loading and evaluations included), steps per second of the
training steps alone (from ``log.jsonl``, the steps that follow an evaluation left out), the peak
memory (CUDA ``max_memory_allocated``; on the CPU the rise of the process's peak resident set
size, whose kernel high-water mark is reset before each run on Linux), and conflict statistics
from the log: the fraction of steps with some pair of task gradients at a negative cosine, and per
epoch the fraction of steps in which the combiner moved the summed direction by more than 1%
(``"changed" > 0.01``). Both need per-task gradients: loss-weighting combiners (``sum``,
``uncertainty``, ...) take one backward pass and log none, and steps of a single task have no
pair. A run that diverges (NaN or infinite loss) is recorded as such and the others go on. A run
with ``result.json`` is skipped (its recorded configuration must match); a run interrupted after
a checkpoint continues from it. Seeds are aggregated as mean ± sample standard
deviation into ``OUT/leaderboard.md``, ``OUT/leaderboard.csv`` and ``OUT/leaderboard.html``.
"""

from __future__ import annotations

import csv
import gc
import json
import re
import resource
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import plotly.graph_objects as go
import torch

from .bert import load_backbone
from .combiners import get_combiner
from .data import get_sampler
from .model import build_model
from .run_config import TrainConfig
from .train import TrainingDiverged, resolve_device, train
from .viz import save_figure
from .viz.reports import LEADERBOARD_COLUMNS

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

RECIPE_KEYS = ("name", "description", "claim", "seeds", "combiners")
SET_BY_LEADERBOARD = ("data", "out", "seed")
CONFIG_KEYS = tuple(f.name for f in fields(TrainConfig) if f.name not in SET_BY_LEADERBOARD)
CHANGED_THRESHOLD = 0.01  # "the combiner changed the summed direction": |d - sum g| > 1% |sum g|
MEASURES = ("wall_seconds", "steps_per_second", "peak_memory_mib", "conflict_fraction")
UNCOMPARED_KEYS = ("out", "progress")  # may differ when a finished run is reused


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
    """Build the recipe's combiner, sampler and model (around the tiny backbone) without
    training, so that a bad option fails before any run starts."""
    get_combiner(config.combiner, seed=config.seed, **config.combiner_options)
    sampler_options = dict(config.sampler_options)
    if config.sampler == "annealed":
        sampler_options.setdefault("epochs", config.epochs)
    get_sampler(config.sampler, {t: config.batch_size for t in config.tasks}, config.batch_size,
                **sampler_options)
    bert, _ = load_backbone("tiny")
    build_model(bert, config)


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def log_statistics(records: Sequence[dict], eval_steps: Iterable[int]) -> dict:
    """Steps per second and conflict statistics from ``log.jsonl`` records.

    eval_steps: the ``step`` of each evaluation (eval.jsonl); the record that follows one is
    left out of the timing, since its time includes the evaluation and the checkpoint.
    """
    eval_steps = set(eval_steps)
    seconds, counted, previous = 0.0, 0, 0.0
    for record in records:
        if record["step"] not in eval_steps:
            seconds, counted = seconds + record["time"] - previous, counted + 1
        previous = record["time"]
    paired = [r for r in records if r.get("cosines")]
    changed: dict[int, list[bool]] = {}
    for record in paired:
        changed.setdefault(int(record["epoch"]), []).append(record["changed"] > CHANGED_THRESHOLD)
    return {
        "steps": len(records),
        "steps_per_second": counted / seconds if seconds > 0 else None,
        "conflict_fraction": (sum(r["conflict"] for r in paired) / len(paired)) if paired
        else None,
        "changed_fraction_per_epoch": {e: sum(c) / len(c) for e, c in sorted(changed.items())},
    }


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"no {field} in /proc/self/status")


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (since the last :func:`reset_peak_rss`)."""
    try:
        return _status_bytes("VmHWM")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def reset_peak_rss() -> int:
    """Reset the kernel's RSS high-water mark (Linux); return the peak from which to count."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # elsewhere the rise is counted from the process's earlier peak
    return peak_rss_bytes()


def measure_run(config: TrainConfig) -> dict:
    """Train ``config`` (continuing from its checkpoint if there is one) and measure it."""
    run_dir = Path(config.out)
    device = resolve_device(config.device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = reset_peak_rss()
    start = time.perf_counter()
    summary, diverged = {}, None
    try:
        summary = train(config, resume=(run_dir / "checkpoint.pt").exists())
    except TrainingDiverged as e:  # recorded; the other runs go on
        diverged = str(e)
    wall = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else peak_rss_bytes() - rss_before)
    eval_steps = [m["step"] for m in read_jsonl(run_dir / "eval.jsonl")]
    best = summary.get("best") or {}
    return {
        "diverged": diverged,
        "metrics": {k: v for k, v in best.items() if k not in ("step", "epoch")},
        "best_step": best.get("step"),
        "wall_seconds": wall,
        "peak_memory_mib": peak / 2**20,
        "peak_memory_kind": "cuda max_memory_allocated" if device.type == "cuda"
        else "peak RSS rise",
        **log_statistics(read_jsonl(run_dir / "log.jsonl"), eval_steps),
    }


def comparable(config: TrainConfig) -> dict:
    values = json.loads(json.dumps(asdict(config)))
    return {k: v for k, v in values.items() if k not in UNCOMPARED_KEYS}


DEFAULTS = comparable(TrainConfig())  # stand in for fields a run recorded before they existed


def run_once(recipe: Recipe, config: TrainConfig) -> tuple[dict, bool]:
    """The result of one seed's run: read from ``result.json`` if finished, else trained.
    Returns (result, whether it was trained now)."""
    path = Path(config.out) / "result.json"
    if path.exists():
        result = json.loads(path.read_text(encoding="utf-8"))
        differing = sorted(k for k, v in comparable(config).items()
                           if result["config"].get(k, DEFAULTS.get(k)) != v)
        if differing:
            raise ValueError(f"{path} was run with other values of {differing}; use another "
                             f"--out or delete that run")
        return result, False
    result = {"name": recipe.name, "seed": config.seed, "config": comparable(config),
              **measure_run(config)}
    result = json.loads(json.dumps(result))  # as a later invocation reads it (string keys)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return result, True


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


def _score(row: dict) -> float:
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
    rows.sort(key=_score, reverse=True)
    (out / "leaderboard.md").write_text(markdown_table(rows), encoding="utf-8")
    write_csv(rows, out / "leaderboard.csv")
    save_figure(leaderboard_figure(rows), out / "leaderboard")
    return rows
