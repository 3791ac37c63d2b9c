"""Is a recipe's dev score different from another's? A paired bootstrap over examples and seeds.

Two recipes run on the same seeds s = 1..S are scored on the same dev examples. One bootstrap
replicate (Efron & Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13: percentile
intervals) draws, for each task, n_t dev examples with replacement (the same draw for both
recipes: the comparison is paired) and S seeds with replacement (again the same for both); each
recipe's metric is computed on the drawn examples for every drawn seed and averaged over the
drawn seeds, and overall = (sst_acc + para_acc + (sts_pearson + 1) / 2) / 3 inside the
replicate. The 2.5th and 97.5th percentiles of the replicates' differences bound the 95%
interval; the verdict is "better" or "worse" when the interval excludes 0, else "not
distinguishable at this budget". Both sources of noise count: which examples the dev set
happened to hold, and which seed a run happened to get. With few seeds the seed part is coarse
(three seeds give at most ten distinct seed draws), so an interval is narrower than the spread
of recipes run on many more seeds would be.

Resampled examples enter as counts (a multinomial weight per example), so each task costs a few
matrix products per chunk of replicates: accuracy = W C^T / n for the correct-answer matrix C,
and Pearson's r from the weighted sums of x, y, x^2, y^2 and xy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..evaluate import METRIC_KEYS

REPLICATES = 10_000
RNG_SEED = 0
CONFIDENCE = 0.95
CHUNK = 500  # replicates per matrix product
NOT_DISTINGUISHABLE = "not distinguishable at this budget"


@dataclass(frozen=True)
class Interval:
    """A difference (recipe minus reference) and its bootstrap interval."""

    estimate: float
    low: float
    high: float

    def verdict(self, null: float = 0.0) -> str:
        """"better" when the interval lies above ``null``, "worse" below, else
        :data:`NOT_DISTINGUISHABLE`."""
        if self.low > null:
            return "better"
        if self.high < null:
            return "worse"
        return NOT_DISTINGUISHABLE

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class TaskPredictions:
    """One task's dev set: the gold labels [n] and both recipes' predictions [S, n] (rows: the
    common seeds, in the same order for both). metric: "accuracy" or "pearson"."""

    metric: str
    gold: np.ndarray
    recipe: np.ndarray
    reference: np.ndarray

    def __post_init__(self):
        n = len(self.gold)
        if self.recipe.shape != self.reference.shape or self.recipe.ndim != 2 \
                or self.recipe.shape[1] != n or n == 0:
            raise ValueError(f"predictions must be [seeds, {n}] for both recipes, got "
                             f"{self.recipe.shape} and {self.reference.shape}")
        if self.metric not in ("accuracy", "pearson"):
            raise ValueError(f"metric must be 'accuracy' or 'pearson', got {self.metric!r}")


def example_weights(rng: np.random.Generator, replicates: int, n: int) -> np.ndarray:
    """[replicates, n] counts: how often each of n examples was drawn in n draws."""
    rows = rng.integers(n, size=(replicates, n)) + n * np.arange(replicates)[:, None]
    return np.bincount(rows.ravel(), minlength=replicates * n).reshape(replicates, n)


def weighted_accuracy(W: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """[R, S] accuracy of each seed's predictions under example counts W [R, n]."""
    return W @ correct.T / correct.shape[1]


def weighted_pearson(W: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[R, S] Pearson correlation of each seed's predictions x [S, n] with y [n] under example
    counts W [R, n]; 0 where either side is constant (as :func:`mtl_tutor.evaluate.pearson`)."""
    n = x.shape[1]
    x = x - x.mean(axis=1, keepdims=True)  # shifts leave r unchanged and the sums small
    y = y - y.mean()
    sx, sxx, sxy = W @ x.T, W @ (x * x).T, W @ (x * y).T
    sy, syy = (W @ y)[:, None], (W @ (y * y))[:, None]
    var_x, var_y = n * sxx - sx * sx, n * syy - sy * sy
    constant = (var_x <= 1e-12 * n * sxx) | (var_y <= 1e-12 * n * syy)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (n * sxy - sx * sy) / np.sqrt(var_x * var_y)
    return np.where(constant, 0.0, r)


def _metric(task: TaskPredictions, W: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    if task.metric == "accuracy":
        return weighted_accuracy(W, (predictions == task.gold).astype(np.float64))
    return weighted_pearson(W, predictions.astype(np.float64), task.gold.astype(np.float64))


def _interval(estimate: float, differences: np.ndarray, confidence: float) -> Interval:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(differences, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high))


def overall(sst: np.ndarray, para: np.ndarray, sts: np.ndarray) -> np.ndarray:
    """The CS224N overall score, elementwise."""
    return (sst + para + (sts + 1) / 2) / 3


def paired_bootstrap(tasks: Mapping[str, TaskPredictions], replicates: int = REPLICATES,
                     seed: int = RNG_SEED, confidence: float = CONFIDENCE) -> dict[str, Interval]:
    """The difference recipe - reference in each task's metric (keyed as
    :data:`~mtl_tutor.evaluate.METRIC_KEYS` names them) and in ``overall`` when SST, Quora and
    STS are all there, each with its percentile interval (see the module docstring)."""
    seeds = {t.recipe.shape[0] for t in tasks.values()}
    if len(seeds) != 1:
        raise ValueError(f"every task needs the same seeds, got {seeds} seed rows")
    (S,) = seeds
    rng = np.random.default_rng(seed)
    seed_weights = np.stack([np.bincount(draw, minlength=S) for draw in
                             rng.integers(S, size=(replicates, S))]) / S  # [R, S]
    replicated, estimates = {}, {}
    for name in sorted(tasks):
        task, key = tasks[name], METRIC_KEYS.get(name, f"{name}_metric")
        n = len(task.gold)
        full = np.ones((1, n))
        estimates[key] = [_metric(task, full, p)[0] for p in (task.recipe, task.reference)]
        parts = [[], []]
        for start in range(0, replicates, CHUNK):
            W = example_weights(rng, min(CHUNK, replicates - start), n).astype(np.float64)
            for side, p in enumerate((task.recipe, task.reference)):
                parts[side].append(_metric(task, W, p))
        replicated[key] = [np.concatenate(side) for side in parts]  # two [R, S]
    if all(k in replicated for k in ("sst_acc", "para_acc", "sts_pearson")):
        for store in (replicated, estimates):
            store["overall"] = [overall(*(store[k][side] for k in
                                          ("sst_acc", "para_acc", "sts_pearson")))
                                for side in (0, 1)]
    intervals = {}
    for key, (mine, theirs) in replicated.items():
        differences = ((mine - theirs) * seed_weights).sum(axis=1)
        estimate = float(np.mean(estimates[key][0]) - np.mean(estimates[key][1]))
        intervals[key] = _interval(estimate, differences, confidence)
    return intervals


def seed_bootstrap(recipe: np.ndarray, reference: np.ndarray | None = None,
                   replicates: int = REPLICATES, seed: int = RNG_SEED,
                   confidence: float = CONFIDENCE) -> Interval:
    """The mean over seeds of recipe - reference (one value per seed, paired by seed; without a
    reference, of ``recipe`` itself) with a percentile interval from resampling the seeds alone:
    for measures recorded once per run, such as a metric at an evaluation whose predictions the
    record does not keep, or a learned task weight. With two or three seeds the 95% interval is
    the range of the seeds' values (every draw of the smallest has probability 1/4 or 1/27,
    above 2.5%), so it excludes 0 only when every seed agrees."""
    values = np.asarray(recipe, dtype=np.float64)
    if reference is not None:
        values = values - np.asarray(reference, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"need one value per seed, got shape {values.shape}")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(len(values), size=(replicates, len(values)))].mean(axis=1)
    return _interval(values.mean(), means, confidence)
