"""A leaderboard record: one small JSON file per finished run, no weights.

``results/leaderboard/PROFILE/RECIPE/seedS.json`` holds (``format`` 1):

- ``recipe``, ``profile``, ``seed``, ``config``: the resolved TrainConfig (paths, device and
  other settings of how the run executed left out, :data:`UNCOMPARED`);
- ``evaluations``: every dev evaluation (step, epoch and each metric); ``selected``: the index
  of the best one (by overall), whose model made the predictions;
- ``dev``: per task, the dev example ``ids`` and the selected model's ``predictions`` in the dev
  file's order (class indices for SST and Quora, scores for STS); no gold labels: the report
  reads those from the data folder; ``data``: per task and split, the file name and SHA-256;
- ``epochs``: per epoch, from the step records (:func:`epoch_statistics`): the share of steps
  with a negative cosine per task pair, the steps where a gradient surgery intervened and the
  per-task gradients it altered, the mean weight each task got;
- measures: ``wall_seconds`` (this invocation, prediction included), ``train_seconds`` (the
  trainer's clock, across resumptions), ``steps``, ``steps_per_second``, ``peak_memory_mib``;
- provenance: ``hardware``, ``software`` (package version, torch, Python, git commit and whether
  the package's tracked source differed from it), ``command``, ``finished`` (UTC),
  ``diverged`` (the message, or null).

A record is written atomically, each top-level key on one line so that its diff stays readable.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..checkpoint import atomic_write_text
from ..data import load_task
from ..data.io import task_file
from ..data.public import file_digests
from ..data.tasks import get_task
from ..gradients import pair_names
from ..run_config import TrainConfig
from ..run_log import StepRecord, changed_steps, conflict_steps

RECORD_FORMAT = 1
UNCOMPARED = ("data", "out", "progress", "device", "checkpoint_every", "eval_batch_size")
CHANGED_THRESHOLD = 0.01  # "the combiner changed the summed direction": |d - sum g| > 1% |sum g|
REQUIRED = ("format", "recipe", "profile", "seed", "config", "evaluations", "selected", "dev",
            "data", "epochs", "diverged")


def record_path(results: str | Path, profile: str, recipe: str, seed: int) -> Path:
    """Where the record of one run lives."""
    return Path(results) / profile / recipe / f"seed{seed}.json"


def comparable(config: TrainConfig) -> dict:
    """The settings a record must have been made with to stand for ``config``."""
    return {k: v for k, v in config.to_dict().items() if k not in UNCOMPARED}


def data_files(data_dir: str | Path, tasks: Iterable[str],
               splits: Sequence[str] = ("train", "dev")) -> dict:
    """``{task: {split: {"file": name, "sha256": hex}}}`` of the files a run reads."""
    files = {}
    for task in tasks:
        for split in splits:
            path = task_file(data_dir, task, split)
            files.setdefault(task, {})[split] = {"file": path.name,
                                                 "sha256": file_digests(path)[2]}
    return files


def epoch_statistics(records: Sequence[StepRecord], tasks: Sequence[str]) -> list[dict]:
    """Per epoch of a run's step records: ``steps``; ``negative_cosine``, per task pair the share
    of the steps holding both tasks' gradients in which their cosine was negative (``any_pair``:
    some pair, of the ``pair_steps`` that logged cosines); ``changed``, the share of steps where
    the combined direction left the sum by more than 1%; of the ``surgery_steps`` of a gradient
    surgery (PCGrad, GradVac), the ``intervention_steps`` (steps with an altered gradient) and
    the ``altered_gradients`` out of ``task_gradients`` (per-task gradients it saw); and
    ``weights``, each task's mean weight. A statistic no step logged is null."""
    epochs: dict[int, list[StepRecord]] = {}
    for record in records:
        epochs.setdefault(record.epoch, []).append(record)
    statistics = []
    for epoch, group in sorted(epochs.items()):
        negative = {}
        for _, _, pair in pair_names(list(tasks)):
            conflicted, logged = conflict_steps(group, pair)
            if logged:
                negative[pair] = conflicted / logged
        conflicted, logged = conflict_steps(group)
        changed, logged_changes = changed_steps(group, CHANGED_THRESHOLD)
        surgery = [r.altered for r in group if r.altered is not None]
        weighted = [r.weights for r in group if r.weights is not None]
        weights = {t: sum(w[t] for w in weighted if t in w) / n for t in tasks
                   if (n := sum(t in w for w in weighted))}
        statistics.append({
            "epoch": epoch, "steps": len(group),
            "negative_cosine": negative or None,
            "pair_steps": logged, "any_pair": conflicted / logged if logged else None,
            "changed": changed / logged_changes if logged_changes else None,
            "surgery_steps": len(surgery),
            "intervention_steps": sum(any(a.values()) for a in surgery) if surgery else None,
            "altered_gradients": sum(sum(a.values()) for a in surgery) if surgery else None,
            "task_gradients": sum(len(a) for a in surgery) if surgery else None,
            "weights": weights or None,
        })
    return statistics


def dev_predictions(run_dir: str | Path, data_dir: str | Path, device: str = "cpu") -> dict:
    """The predictions of the model saved in ``run_dir`` (the best on dev) for every dev
    example, in each dev file's order: ``{task: {"ids": [...], "predictions": [...]}}``."""
    from ..checkpoint import load_run
    from ..evaluate import ordered_batches, predict_task

    model, tokenizer, config = load_run(run_dir, device)
    predictions = {}
    for task in config.tasks:
        data = load_task(data_dir, task, "dev", strict=config.strict_data)
        batches = (b.to(device) for b in ordered_batches(
            data, tokenizer, config.eval_batch_size, pair_encoding=config.encoding_of(task),
            max_length=config.max_length))
        ids, values, _ = predict_task(model, batches)
        by_id = dict(zip(ids, values.tolist()))
        as_value = (lambda v: round(v, 6)) if get_task(task).metric == "pearson" else int
        ordered = [e.id for e in data.examples]
        predictions[task] = {"ids": ordered, "predictions": [as_value(by_id[i]) for i in ordered]}
    return predictions


PACKAGE_DIR = Path(__file__).parents[1]


def source_state(source_dir: Path) -> tuple[str | None, bool | None]:
    """The git commit checked out at ``source_dir`` and whether a tracked file under
    ``source_dir`` differs from it; ``(None, None)`` outside a git checkout.

    Only the source folder counts: the reports that a concurrent leaderboard run rewrites
    elsewhere in the checkout do not change the code that trained.
    """
    commit = _git(source_dir, "rev-parse", "HEAD")
    status = _git(source_dir, "status", "--porcelain", "--untracked-files=no", "--", ".")
    return commit, (None if commit is None or status is None else bool(status))


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(device: torch.device) -> dict:
    """``hardware`` and ``software`` of this process (git: the package's checkout, if any)."""
    commit, dirty = source_state(PACKAGE_DIR)
    return {
        "hardware": {
            "cpu": _cpu_model(), "cpu_cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "device": str(device),
        },
        "software": {
            "mtl_tutor": __version__, "torch": torch.__version__,
            "python": platform.python_version(), "commit": commit, "dirty": dirty,
        },
    }


def json_text(content: Mapping[str, Any]) -> str:
    """A mapping as JSON, one top-level key per line (records and bench results)."""
    lines = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in content.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_json(path: str | Path, content: Mapping[str, Any]) -> None:
    """Write :func:`json_text` atomically (a crash leaves the old file or the new one)."""
    atomic_write_text(path, json_text(content))


def read_record(path: str | Path) -> dict:
    """A record, checked for the keys every record has; errors name the file."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    missing = [k for k in REQUIRED if not isinstance(record, dict) or k not in record]
    if missing:
        raise ValueError(f"{path}: not a leaderboard record (missing {', '.join(missing)})")
    if record["format"] != RECORD_FORMAT:
        raise ValueError(f"{path}: record format {record['format']!r}, this version reads "
                         f"{RECORD_FORMAT}")
    return record


def read_records(results: str | Path, profile: str) -> dict[tuple[str, int], dict]:
    """Every record of a profile, keyed by (recipe, seed)."""
    records = {}
    for path in sorted((Path(results) / profile).glob("*/seed*.json")):
        record = read_record(path)
        if path != record_path(results, profile, record["recipe"], record["seed"]):
            raise ValueError(f"{path}: holds recipe {record['recipe']!r} seed {record['seed']} "
                             f"of profile {record['profile']!r}; it belongs elsewhere")
        records[record["recipe"], record["seed"]] = record
    return records


def config_differences(record: Mapping, config: TrainConfig) -> list[str]:
    """The settings in which a record's run differs from ``config`` (read as this version reads
    a config: fields the record predates take their defaults)."""
    try:
        recorded = comparable(TrainConfig.from_dict(record["config"]))
    except ValueError as e:
        return [f"a configuration this version refuses ({e})"]
    wanted = comparable(config)
    return sorted(k for k in wanted if recorded.get(k) != wanted[k])


def check_data(record: Mapping, data: Mapping, data_dir: str | Path, where: str) -> None:
    """Refuse a record made on other data files than ``data`` (:func:`data_files` of
    ``data_dir``), naming the first file that differs."""
    for task, splits in record["data"].items():
        for split, made_on in splits.items():
            here = data.get(task, {}).get(split)
            if here != made_on:
                found = f"{Path(data_dir) / here['file']} has {here['sha256']}" if here else \
                    f"{data_dir} has no such file"
                raise ValueError(f"{where}: made on a {task} {split} file with SHA-256 "
                                 f"{made_on['sha256']}, but {found}; point --data at the data "
                                 f"the records were made on")
