"""Report figures: confusion matrix, Quora errors, STS errors, conflict counts, leaderboard."""

import numpy as np
import pytest

from mtl_tutor.run_log import StepRecord
from mtl_tutor.viz import save_figure
from mtl_tutor.viz.reports import (
    conflict_counts,
    conflict_counts_figure,
    layer_conflict_heatmap,
    leaderboard_table,
    quora_errors_table,
    sst_confusion_figure,
    sts_error_figure,
)


def test_confusion_matrix_counts_and_row_shares():
    fig = sst_confusion_figure([0, 0, 1, 4, 4, 4], [0, 1, 1, 4, 4, 3])
    heatmap = fig.data[0]
    counts = np.asarray(heatmap.text)
    assert counts[0].tolist() == [1, 1, 0, 0, 0] and counts[4].tolist() == [0, 0, 0, 1, 2]
    np.testing.assert_allclose(np.asarray(heatmap.z)[4], [0, 0, 0, 1 / 3, 2 / 3])
    assert "accuracy 0.667" in fig.layout.title.text
    with pytest.raises(ValueError, match="same length"):
        sst_confusion_figure([0, 1], [0])


def test_quora_table_lists_the_most_confident_mistakes_first():
    pairs = [(f"q{i}a", f"q{i}b") for i in range(6)]
    labels = [0, 0, 1, 1, 0, 1]
    scores = [0.9, 0.6, 0.1, 0.4, 0.2, 0.8]  # FP: 0 (0.9), 1 (0.6); FN: 2 (0.1), 3 (0.4)
    table = quora_errors_table(pairs, labels, scores, count=5).data[0]
    kinds, shown, first, _ = table.cells["values"]
    assert list(kinds) == ["false positive"] * 2 + ["false negative"] * 2
    assert list(first) == ["q0a", "q1a", "q2a", "q3a"]
    assert list(shown) == ["0.900", "0.600", "0.100", "0.400"]


def test_sts_figure_reports_pearson_and_errors():
    gold = np.linspace(0, 5, 50)
    predicted = gold + np.where(np.arange(50) % 2 == 0, 0.5, -0.5)
    fig = sts_error_figure(gold, predicted)
    np.testing.assert_allclose(sorted(set(np.round(fig.data[0].x, 6))), [-0.5, 0.5])
    r = np.corrcoef(gold, predicted)[0, 1]
    assert f"{r:.3f}" in fig.layout.title.text


def step(number, epoch, **statistics):
    return StepRecord.from_statistics(number, epoch, 1e-5, {"sst": 1.0}, 0.1 * number, statistics)


def test_conflict_counts_per_pair_and_epoch():
    records = [
        step(0, 0, cosines={"sst/quora": -0.2, "sst/sts": 0.3}),
        step(1, 0, cosines={"sst/quora": 0.1, "sst/sts": -0.1}),
        step(2, 1, cosines={"sst/quora": -0.5, "sst/sts": -0.4}),
    ]
    assert conflict_counts(records) == {
        "sst/quora": {0: (1, 2), 1: (1, 1)}, "sst/sts": {0: (1, 2), 1: (1, 1)}
    }
    fig = conflict_counts_figure(records)
    assert [bar.name for bar in fig.data] == ["sst/quora", "sst/sts"]
    assert list(fig.data[0].y) == [1, 1] and list(fig.data[0].customdata) == [0.5, 1.0]


def test_layer_heatmap_shares_and_means():
    records = [
        step(0, 0, layer_cosines={"layer 0": {"sst/quora": -0.5}, "layer 1": {"sst/quora": 0.5}}),
        step(1, 0, layer_cosines={"layer 0": {"sst/quora": 0.1}, "layer 1": {"sst/quora": 0.3}}),
    ]
    heatmap = layer_conflict_heatmap(records).data[0]
    assert list(heatmap.y) == ["layer 0", "layer 1"]
    np.testing.assert_allclose(np.asarray(heatmap.z)[:, 0], [0.5, 0.0])
    np.testing.assert_allclose(np.asarray(heatmap.customdata)[:, 0], [-0.2, 0.4])
    with pytest.raises(ValueError, match="layer_cosines"):
        layer_conflict_heatmap([step(1, 0)])


def test_leaderboard_ranks_by_overall(tmp_path):
    runs = [
        {"name": "sum", "sst_acc": 0.5, "para_acc": 0.8, "sts_pearson": 0.8, "overall": 0.7},
        {"name": "pcgrad", "sst_acc": 0.52, "para_acc": 0.81, "sts_pearson": 0.82, "overall": 0.72},
    ]
    fig = leaderboard_table(runs)
    assert list(fig.data[0].cells["values"][1]) == ["pcgrad", "sum"]
    written = save_figure(fig, tmp_path / "leaderboard")
    assert written[0].name == "leaderboard.html" and written[0].stat().st_size > 1000
    first = written[0].read_bytes()
    save_figure(fig, tmp_path / "leaderboard")
    assert written[0].read_bytes() == first  # no random div id: a re-export leaves no diff
    with pytest.raises(ValueError, match="overall"):
        leaderboard_table([{"name": "x"}])
