"""What a profile's records show: each recipe's finished seeds, its predictions lined up with the
gold labels, and recipe-against-recipe comparisons (:mod:`~mtl_tutor.leaderboard.bootstrap`).

Records keep no gold labels. They are read from the data folder (found as every command finds
it: ``--data``, ``$MTL_TUTOR_DATA``, the download folder), and only when each dev file's SHA-256
is the one the records were made on; the predictions of every record must reproduce the metrics
it recorded, so that a record and the labels it is scored against cannot drift apart unseen.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..data import load_task
from ..data.io import task_file
from ..data.public import file_digests
from ..data.tasks import get_task
from ..evaluate import METRIC_KEYS, accuracy, pearson
from .bootstrap import Interval, TaskPredictions, paired_bootstrap, seed_bootstrap

REPRODUCED = 1e-4  # recomputed metric vs the recorded one (STS predictions keep 6 decimals)
FEW_SEEDS = 2  # an interval from resampling seeds alone needs at least this many
EXAMPLES_AND_SEEDS, SEEDS_ALONE = "95% (examples and seeds)", "95% (seeds)"


class DevLabels:
    """The gold labels of the dev files in ``data_dir``, read once per task; ``check`` refuses
    a record made on another file."""

    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir)
        self._tasks: dict[str, tuple[str, list[str], np.ndarray]] = {}

    def task(self, task: str) -> tuple[str, list[str], np.ndarray]:
        """(SHA-256 of the dev file, example ids, gold labels) of ``task``."""
        if task not in self._tasks:
            path = task_file(self.data_dir, task, "dev")
            data = load_task(self.data_dir, task, "dev")
            labels = np.array([e.label for e in data.examples], dtype=np.float64)
            self._tasks[task] = (file_digests(path)[2], [e.id for e in data.examples], labels)
        return self._tasks[task]

    def predictions(self, record: Mapping, where: str) -> dict[str, np.ndarray]:
        """The record's predictions per task, in the order of the gold labels; refused when the
        dev file differs from the record's or the predictions do not give the recorded
        metrics."""
        aligned = {}
        for task, kept in record["dev"].items():
            sha, ids, labels = self.task(task)
            recorded = record["data"][task]["dev"]["sha256"]
            if sha != recorded:
                raise ValueError(
                    f"{where}: made on a {task} dev file with SHA-256 {recorded}, but "
                    f"{task_file(self.data_dir, task, 'dev')} has {sha}; point --data at the "
                    f"data the records were made on")
            by_id = dict(zip(kept["ids"], kept["predictions"]))
            missing = [i for i in ids if i not in by_id]
            if missing or len(by_id) != len(ids):
                raise ValueError(f"{where}: its {task} predictions do not cover the dev file's "
                                 f"{len(ids)} examples")
            aligned[task] = np.array([by_id[i] for i in ids], dtype=np.float64)
            spec = get_task(task)
            value = (pearson if spec.metric == "pearson" else accuracy)(aligned[task], labels)
            key = METRIC_KEYS.get(task, f"{task}_metric")
            expected = record["evaluations"][record["selected"]][key]
            if not abs(value - expected) <= REPRODUCED:
                raise ValueError(f"{where}: its {task} predictions give {key} {value:.6f}, "
                                 f"but the record says {expected:.6f}")
        return aligned


class Evidence:
    """The records of one profile (by recipe and seed), readable against the dev labels."""

    def __init__(self, records: Mapping[tuple[str, int], dict], labels: DevLabels | None,
                 results: str | Path = ""):
        self.records, self.labels, self.results = dict(records), labels, Path(results)
        self._aligned: dict[tuple[str, int], dict[str, np.ndarray]] = {}
        self._compared: dict[tuple[str, str], dict[str, Interval] | None] = {}

    def finished(self, recipe: str) -> dict[int, dict]:
        """The records of ``recipe`` that did not diverge, by seed."""
        return {seed: r for (name, seed), r in sorted(self.records.items())
                if name == recipe and r["diverged"] is None}

    def diverged(self, recipe: str) -> list[int]:
        return sorted(seed for (name, seed), r in self.records.items()
                      if name == recipe and r["diverged"] is not None)

    def aligned(self, recipe: str, seed: int) -> dict[str, np.ndarray]:
        key = (recipe, seed)
        if key not in self._aligned:
            if self.labels is None:
                raise ValueError("comparing records needs the dev labels: give --data")
            where = str(self.results / f"{recipe}/seed{seed}.json")
            self._aligned[key] = self.labels.predictions(self.records[key], where)
        return self._aligned[key]

    def common_seeds(self, recipe: str, reference: str) -> list[int]:
        return sorted(set(self.finished(recipe)) & set(self.finished(reference)))

    def compare(self, recipe: str, reference: str) -> dict[str, Interval] | None:
        """recipe - reference in each metric of the selected models, with the paired bootstrap
        over dev examples and their common seeds; None without a common seed."""
        key = (recipe, reference)
        if key not in self._compared:
            seeds = self.common_seeds(recipe, reference)
            self._compared[key] = None
            if seeds:
                mine = [self.aligned(recipe, s) for s in seeds]
                theirs = [self.aligned(reference, s) for s in seeds]
                tasks = {}
                for task in (t for t in mine[0] if t in theirs[0]):  # the tasks both trained
                    _, _, labels = self.labels.task(task)
                    tasks[task] = TaskPredictions(
                        get_task(task).metric, labels, np.stack([m[task] for m in mine]),
                        np.stack([t[task] for t in theirs]))
                self._compared[key] = paired_bootstrap(tasks)
        return self._compared[key]

    def at_first_evaluation(self, recipe: str, reference: str, metric: str
                            ) -> tuple[Interval | None, int, str]:
        """recipe - reference in ``metric`` at the first evaluation of the common seeds, how many
        seeds there are, and what the interval resamples. When the first evaluation is the
        selected one in every record, the paired bootstrap over examples and seeds; else the
        metric as recorded, resampling the seeds alone (None with a single seed)."""
        seeds = self.common_seeds(recipe, reference)
        runs = [self.finished(r)[s] for r in (recipe, reference) for s in seeds]
        if seeds and all(r["selected"] == 0 for r in runs):
            return self.compare(recipe, reference)[metric], len(seeds), EXAMPLES_AND_SEEDS
        if len(seeds) < FEW_SEEDS:
            return None, len(seeds), SEEDS_ALONE
        values = [[self.finished(r)[s]["evaluations"][0][metric] for s in seeds]
                  for r in (recipe, reference)]
        interval = seed_bootstrap(np.array(values[0]), np.array(values[1]))
        return interval, len(seeds), SEEDS_ALONE

    def last_epoch_weights(self, recipe: str) -> dict[int, dict[str, float]]:
        """Each finished seed's mean task weights over its last epoch (runs that logged them)."""
        weights = {}
        for seed, record in self.finished(recipe).items():
            last = record["epochs"][-1]["weights"] if record["epochs"] else None
            if last:
                weights[seed] = last
        return weights
