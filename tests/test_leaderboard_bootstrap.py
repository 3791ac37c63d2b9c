"""The paired bootstrap over dev examples and seeds: hand-computable cases, each replicate's
metrics against a direct computation on the resampled examples, and the interval's coverage of
a known difference over many synthetic draws."""

import numpy as np
import pytest

from mtl_tutor.evaluate import accuracy, overall_score, pearson
from mtl_tutor.leaderboard.bootstrap import (
    NOT_DISTINGUISHABLE,
    Interval,
    TaskPredictions,
    example_weights,
    paired_bootstrap,
    seed_bootstrap,
    weighted_accuracy,
    weighted_pearson,
)


def three_tasks(rng, seeds=3, n=(60, 80, 50)):
    """Gold labels and two recipes' predictions for SST (5 classes), Quora and STS."""
    gold = {"sst": rng.integers(5, size=n[0]).astype(float),
            "quora": rng.integers(2, size=n[1]).astype(float),
            "sts": rng.uniform(0, 5, size=n[2])}

    def guess(noise):
        return {"sst": np.where(rng.random((seeds, n[0])) < 0.5, gold["sst"],
                                rng.integers(5, size=(seeds, n[0]))),
                "quora": np.where(rng.random((seeds, n[1])) < 0.7, gold["quora"],
                                  1 - gold["quora"]),
                "sts": gold["sts"] + rng.normal(0, noise, size=(seeds, n[2]))}
    return gold, guess(1.0), guess(2.0)


def tasks_of(gold, mine, theirs):
    metric = {"sst": "accuracy", "quora": "accuracy", "sts": "pearson"}
    return {t: TaskPredictions(metric[t], gold[t], mine[t], theirs[t]) for t in gold}


def test_identical_predictions_give_the_interval_zero_zero():
    rng = np.random.default_rng(0)
    gold, mine, _ = three_tasks(rng)
    intervals = paired_bootstrap(tasks_of(gold, mine, mine), replicates=500)
    assert set(intervals) == {"sst_acc", "para_acc", "sts_pearson", "overall"}
    for interval in intervals.values():
        assert (interval.estimate, interval.low, interval.high) == (0.0, 0.0, 0.0)
        assert interval.verdict() == NOT_DISTINGUISHABLE


def test_a_recipe_right_wherever_the_reference_is_wrong_is_better():
    rng = np.random.default_rng(1)
    gold = rng.integers(2, size=200).astype(float)
    reference = np.where(rng.random((2, 200)) < 0.6, gold, 1 - gold)
    recipe = np.tile(gold, (2, 1))  # right on every example
    tasks = {"quora": TaskPredictions("accuracy", gold, recipe, reference)}
    (interval,) = paired_bootstrap(tasks, replicates=1000).values()
    assert interval.estimate == pytest.approx(1 - (reference == gold).mean())
    assert interval.low > 0 and interval.verdict() == "better"
    swapped = {"quora": TaskPredictions("accuracy", gold, reference, recipe)}
    assert paired_bootstrap(swapped, replicates=1000)["para_acc"].verdict() == "worse"


def test_the_estimate_is_the_difference_of_the_seeds_mean_metrics():
    rng = np.random.default_rng(2)
    gold, mine, theirs = three_tasks(rng)
    intervals = paired_bootstrap(tasks_of(gold, mine, theirs), replicates=200)

    def metrics(predictions, s):
        return {"sst_acc": accuracy(predictions["sst"][s], gold["sst"]),
                "para_acc": accuracy(predictions["quora"][s], gold["quora"]),
                "sts_pearson": pearson(predictions["sts"][s], gold["sts"])}

    for key in ("sst_acc", "para_acc", "sts_pearson", "overall"):
        values = [[(overall_score(m) if key == "overall" else m[key])
                   for m in (metrics(p, s) for s in range(3))] for p in (mine, theirs)]
        assert intervals[key].estimate == pytest.approx(np.mean(values[0]) - np.mean(values[1]))
        assert intervals[key].low <= intervals[key].estimate <= intervals[key].high


def test_weighted_metrics_equal_the_metrics_of_the_resampled_examples():
    rng = np.random.default_rng(3)
    n = 40
    W = example_weights(rng, 5, n)
    assert W.shape == (5, n) and (W.sum(axis=1) == n).all()
    y = rng.uniform(0, 5, n)
    x = y + rng.normal(0, 1, (2, n))
    labels = rng.integers(3, size=n)
    guesses = rng.integers(3, size=(2, n))
    r, acc = weighted_pearson(W, x, y), weighted_accuracy(W, (guesses == labels).astype(float))
    for i in range(5):
        drawn = np.repeat(np.arange(n), W[i])  # the examples of replicate i, repeats included
        for s in range(2):
            assert r[i, s] == pytest.approx(pearson(x[s, drawn], y[drawn]), abs=1e-12)
            assert acc[i, s] == pytest.approx(accuracy(guesses[s, drawn], labels[drawn]))
    constant = np.zeros((1, n))
    assert (weighted_pearson(W, constant, y) == 0).all()  # as evaluate.pearson says


def test_overall_is_formed_inside_each_replicate():
    rng = np.random.default_rng(4)
    gold, mine, theirs = three_tasks(rng)
    intervals = paired_bootstrap(tasks_of(gold, mine, theirs), replicates=300)
    parts = [intervals[k].estimate for k in ("sst_acc", "para_acc", "sts_pearson")]
    assert intervals["overall"].estimate == pytest.approx((parts[0] + parts[1]
                                                           + parts[2] / 2) / 3)
    # the interval of the overall is not the overall of the intervals' ends
    lows = [intervals[k].low for k in ("sst_acc", "para_acc", "sts_pearson")]
    assert intervals["overall"].low > (lows[0] + lows[1] + lows[2] / 2) / 3


def test_the_interval_covers_a_known_difference_at_about_the_nominal_rate():
    """200 synthetic dev sets of 300 examples: the reference is right with probability 0.70,
    the recipe with 0.75 (the population difference 0.05), both through one latent difficulty
    u ~ U(0, 1) per example, so that their errors are correlated, plus noise v ~ U(0, 0.1) of
    each seed's own: right when u + v < c, which has probability c - 0.05 for c in [0.1, 1]."""
    rng = np.random.default_rng(5)
    covered = 0
    draws, n, seeds = 200, 300, 2
    for draw in range(draws):
        difficulty = rng.random(n)
        gold = rng.integers(2, size=n).astype(float)
        noise = rng.random((2, seeds, n)) * 0.1
        right_ref, right_rec = difficulty + noise[0] < 0.75, difficulty + noise[1] < 0.80
        tasks = {"quora": TaskPredictions("accuracy", gold, np.where(right_rec, gold, 1 - gold),
                                          np.where(right_ref, gold, 1 - gold))}
        interval = paired_bootstrap(tasks, replicates=400, seed=draw)["para_acc"]
        covered += interval.contains(0.05)
    assert 0.90 <= covered / draws < 1.0  # 95% nominal; every draw covered would be too wide


def test_seed_bootstrap_resamples_the_seeds_alone():
    interval = seed_bootstrap(np.array([0.3, 0.1, 0.2]), np.array([0.1, 0.1, 0.1]),
                              replicates=2000)
    assert interval.estimate == pytest.approx(0.1)
    # three seeds: the 2.5th and 97.5th percentiles are the smallest and largest difference
    assert (interval.low, interval.high) == pytest.approx((0.0, 0.2))
    assert interval.verdict() == NOT_DISTINGUISHABLE
    assert Interval(0.1, 0.05, 0.2).verdict() == "better"
    with pytest.raises(ValueError, match="one value per seed"):
        seed_bootstrap(np.array([]))


def test_predictions_of_another_shape_are_refused():
    gold = np.zeros(4)
    with pytest.raises(ValueError, match=r"predictions must be \[seeds, 4\]"):
        TaskPredictions("accuracy", gold, np.zeros((2, 4)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="metric must be"):
        TaskPredictions("f1", gold, np.zeros((1, 4)), np.zeros((1, 4)))
