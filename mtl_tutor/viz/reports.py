"""Report figures from plain data (lists, arrays, dicts, a run's step records): where each task
errs, and where tasks conflict. Every function returns a ``go.Figure``; :func:`save_figure`
writes it to disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..run_log import StepRecord, conflict_steps, step_records

SST_CLASSES = ("very negative", "negative", "neutral", "positive", "very positive")
LEADERBOARD_COLUMNS = ("sst_acc", "para_acc", "sts_pearson", "overall")


def _same_length(**arrays: Sequence) -> None:
    lengths = {name: len(values) for name, values in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"inputs must have the same length, got {lengths}")


def sst_confusion_figure(
    labels: Sequence[int], predictions: Sequence[int], class_names: Sequence[str] = SST_CLASSES
) -> go.Figure:
    """Confusion matrix of SST-5: counts, coloured by the share of each true class (row)."""
    _same_length(labels=labels, predictions=predictions)
    K = len(class_names)
    counts = np.zeros((K, K), dtype=int)
    np.add.at(counts, (np.asarray(labels, dtype=int), np.asarray(predictions, dtype=int)), 1)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros((K, K)), where=rows > 0)
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    fig = go.Figure(go.Heatmap(
        z=shares, x=list(class_names), y=list(class_names), text=counts, texttemplate="%{text}",
        colorscale="Blues", zmin=0, zmax=1, colorbar={"title": "share of row"},
        hovertemplate="true %{y}<br>predicted %{x}<br>%{text} examples<extra></extra>",
    ))
    fig.update_layout(title=f"SST-5 confusion matrix (accuracy {accuracy:.3f})",
                      xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed")
    return fig


def quora_errors_table(
    sentence_pairs: Sequence[tuple[str, str]],
    labels: Sequence[int],
    scores: Sequence[float],
    count: int = 10,
    threshold: float = 0.5,
) -> go.Figure:
    """The ``count`` most confident false positives and false negatives of Quora paraphrase
    detection; ``scores`` are predicted probabilities of "paraphrase"."""
    _same_length(sentence_pairs=sentence_pairs, labels=labels, scores=scores)
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=float)
    predicted = scores >= threshold
    false_positive = np.flatnonzero(predicted & (labels == 0))
    false_negative = np.flatnonzero(~predicted & (labels == 1))
    chosen = [("false positive", i) for i in false_positive[np.argsort(-scores[false_positive])]]
    chosen = chosen[:count] + [
        ("false negative", i) for i in false_negative[np.argsort(scores[false_negative])]
    ][:count]
    columns = {
        "error": [kind for kind, _ in chosen],
        "score": [f"{scores[i]:.3f}" for _, i in chosen],
        "question 1": [sentence_pairs[i][0] for _, i in chosen],
        "question 2": [sentence_pairs[i][1] for _, i in chosen],
    }
    fig = go.Figure(go.Table(
        columnwidth=[1.2, 0.7, 4, 4],
        header={"values": list(columns), "align": "left", "fill_color": "#e8e8e8"},
        cells={"values": list(columns.values()), "align": "left"},
    ))
    fig.update_layout(title=f"Quora: {len(false_positive)} false positives, "
                            f"{len(false_negative)} false negatives (threshold {threshold:g})")
    return fig


def sts_error_figure(targets: Sequence[float], predictions: Sequence[float]) -> go.Figure:
    """STS-B: histogram of the errors (predicted - gold) and predicted against gold similarity."""
    _same_length(targets=targets, predictions=predictions)
    targets, predictions = np.asarray(targets, dtype=float), np.asarray(predictions, dtype=float)
    pearson = float(np.corrcoef(targets, predictions)[0, 1]) if len(targets) > 1 else float("nan")
    fig = make_subplots(1, 2, subplot_titles=("error = predicted - gold", "predicted vs gold"))
    fig.add_trace(go.Histogram(x=predictions - targets, nbinsx=40, name="errors"), 1, 1)
    fig.add_trace(go.Scatter(x=targets, y=predictions, mode="markers", name="pairs",
                             marker={"size": 4, "opacity": 0.5}), 1, 2)
    low, high = float(min(targets.min(), predictions.min())), float(
        max(targets.max(), predictions.max())
    )
    fig.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", name="predicted = gold",
                             line={"dash": "dash", "color": "grey"}), 1, 2)
    fig.update_xaxes(title_text="error", row=1, col=1)
    fig.update_xaxes(title_text="gold similarity", row=1, col=2)
    fig.update_yaxes(title_text="predicted similarity", row=1, col=2)
    fig.update_layout(title=f"STS-B errors (Pearson r = {pearson:.3f})", showlegend=False)
    return fig


def conflict_counts(records: Sequence[StepRecord | Mapping]
                    ) -> dict[str, dict[int, tuple[int, int]]]:
    """Per task pair and epoch: (steps with a negative cosine, steps), from a run's step records
    (:func:`~mtl_tutor.run_log.read_steps`, or log.jsonl's lines as dictionaries)."""
    records = step_records(records)
    pairs: dict[frozenset, str] = {}  # each pair under its first spelling ("a/b" or "b/a")
    for record in records:
        for pair in record.cosines or {}:
            pairs.setdefault(frozenset(pair.split("/")), pair)
    epochs = sorted({r.epoch for r in records})
    counts = {pair: {e: conflict_steps([r for r in records if r.epoch == e], pair)
                     for e in epochs} for pair in pairs.values()}
    return {pair: {e: c for e, c in by_epoch.items() if c[1]} for pair, by_epoch in counts.items()}


def conflict_counts_figure(records: Sequence[StepRecord | Mapping]) -> go.Figure:
    """Grouped bars: steps with conflicting gradients per task pair in each epoch."""
    fig = go.Figure()
    for pair, epochs in conflict_counts(records).items():
        ordered = sorted(epochs)
        fig.add_trace(go.Bar(
            x=ordered, y=[epochs[e][0] for e in ordered], name=pair,
            customdata=[epochs[e][0] / epochs[e][1] for e in ordered],
            hovertemplate=f"{pair}<br>epoch %{{x}}: %{{y}} steps (%{{customdata:.0%}})"
                          "<extra></extra>",
        ))
    fig.update_layout(title="Steps with conflicting gradients (cosine < 0)", barmode="group",
                      xaxis_title="epoch", yaxis_title="steps", xaxis_dtick=1)
    return fig


def layer_conflict_heatmap(records: Sequence[StepRecord | Mapping]) -> go.Figure:
    """Share of steps with a negative cosine per layer (rows) and task pair (columns), from
    step records carrying ``layer_cosines`` ({layer: {pair: cosine}}); hover shows the mean
    cosine."""
    cosines: dict[str, dict[str, list[float]]] = {}
    for record in step_records(records):
        for layer, pairs in (record.layer_cosines or {}).items():
            for pair, cosine in pairs.items():
                cosines.setdefault(layer, {}).setdefault(pair, []).append(cosine)
    if not cosines:
        raise ValueError("records carry no 'layer_cosines'; log them to draw this heatmap")
    layers = list(cosines)
    pairs = list(dict.fromkeys(pair for layer in layers for pair in cosines[layer]))
    values = [[np.asarray(cosines[layer].get(pair, [np.nan])) for pair in pairs]
              for layer in layers]
    share = [[float(np.mean(v < 0)) if np.isfinite(v).all() else np.nan for v in row]
             for row in values]
    mean = [[float(np.mean(v)) for v in row] for row in values]
    fig = go.Figure(go.Heatmap(
        z=share, x=pairs, y=layers, customdata=mean, zmin=0, zmax=1, colorscale="Reds",
        colorbar={"title": "share < 0"}, texttemplate="%{z:.2f}",
        hovertemplate="%{y}<br>%{x}: %{z:.0%} of steps conflict, mean cosine "
                      "%{customdata:.3f}<extra></extra>",
    ))
    fig.update_layout(title="Conflicting steps per layer and task pair", yaxis_autorange="reversed",
                      height=max(350, 22 * len(layers) + 150))
    return fig


def leaderboard_table(runs: Sequence[dict]) -> go.Figure:
    """Runs sorted by the overall score; each run is a dict with ``name`` and the dev metrics."""
    for run in runs:
        missing = [key for key in ("name", *LEADERBOARD_COLUMNS) if key not in run]
        if missing:
            raise ValueError(f"each run needs name and {LEADERBOARD_COLUMNS}; missing {missing}")
    ranked = sorted(runs, key=lambda run: -run["overall"])
    columns = {"rank": list(range(1, len(ranked) + 1)), "run": [run["name"] for run in ranked]}
    for key in LEADERBOARD_COLUMNS:
        columns[key] = [f"{run[key]:.4f}" for run in ranked]
    fig = go.Figure(go.Table(
        header={"values": list(columns), "align": "left", "fill_color": "#e8e8e8"},
        cells={"values": list(columns.values()), "align": "left"},
    ))
    fig.update_layout(
        title="Leaderboard (overall = (sst_acc + para_acc + (sts_pearson + 1) / 2) / 3)"
    )
    return fig
