"""The text beside the gradient-geometry figure: norms, pairwise cosines and ``<g_k, d>``.

Rendered as HTML with stable CSS classes (``mtl-combined-direction`` holds ``d``, also as JSON in
its ``data-direction`` attribute, next to the drawn gradients in ``data-gradients``) so that
browser tests and users can read the numbers.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

import numpy as np

NEGATIVE_STYLE = "color:#d62728;font-weight:bold"


def _cell(value: float, *, red_if_negative: bool = True) -> str:
    style = f' style="{NEGATIVE_STYLE}"' if red_if_negative and value < 0 else ""
    return f"<td{style}>{value:+.3f}</td>"


def readout_html(
    drawn_gradients: np.ndarray,
    gramian: np.ndarray,
    gradient_dot_direction: np.ndarray,
    direction: np.ndarray,
    task_names: Sequence[str],
    combiner_name: str,
    note: str = "",
) -> str:
    """A table of |g_k|, cos(g_j, g_k) and <g_k, d> (red where negative), then ``d`` itself.

    ``gramian`` is G G^T [K, K] and ``gradient_dot_direction`` is G d [K], so the same readout
    serves toy vectors and the full gradients of a model; ``drawn_gradients`` [K, dim] and
    ``direction`` [dim] are the drawn vectors.
    """
    norms = np.sqrt(np.clip(np.diag(gramian), 0.0, None))
    outer = np.outer(norms, norms)
    cosines = np.divide(gramian, outer, out=np.zeros_like(gramian), where=outer > 0)
    names = [html.escape(name) for name in task_names]
    header = "".join(f"<th>cos(·, {name})</th>" for name in names)
    rows = []
    for k, name in enumerate(names):
        cosine_cells = "".join(
            "<td>—</td>" if j == k else _cell(cosines[k, j]) for j in range(len(names))
        )
        rows.append(
            f"<tr><th>{name}</th><td>{norms[k]:.3f}</td>{cosine_cells}"
            f"{_cell(gradient_dot_direction[k])}</tr>"
        )
    shown = ", ".join(f"{value:+.4f}" for value in direction)
    data = html.escape(json.dumps(np.asarray(direction, dtype=float).tolist()))
    drawn = html.escape(json.dumps(np.asarray(drawn_gradients, dtype=float).tolist()))
    note_html = f'<div class="mtl-geometry-note">{html.escape(note)}</div>' if note else ""
    return (
        '<table class="mtl-geometry-table">'
        f"<tr><th>task</th><th>|g|</th>{header}<th>&lt;g, d&gt;</th></tr>{''.join(rows)}</table>"
        f"<div>d ({html.escape(combiner_name)}) = "
        f'<span class="mtl-combined-direction" data-direction="{data}" data-gradients="{drawn}">'
        f"({shown})</span></div>"
        f"{note_html}"
    )
