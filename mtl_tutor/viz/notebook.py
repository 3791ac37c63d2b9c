"""Where a figure is shown: a live widget in a notebook, a static file or a progress bar outside."""

from __future__ import annotations

import base64

import plotly.graph_objects as go

from .export import figure_png


def in_notebook() -> bool:
    """True inside a Jupyter kernel (a frontend can show widgets), False in scripts and shells."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def show_figure(widget: go.FigureWidget, figure: go.Figure) -> None:
    """Make ``widget`` show ``figure``: restyle its traces in place when they are the same kind
    and name (the frontend keeps zoom and camera), else replace them; one message either way."""
    same_traces = [(t.type, t.name) for t in widget.data] == [(t.type, t.name) for t in figure.data]
    with widget.batch_update():
        if same_traces:
            for old, new in zip(widget.data, figure.data, strict=True):
                old.update(new.to_plotly_json(), overwrite=True)
        else:
            widget.data = ()
            widget.add_traces(figure.data)
        widget.update_layout(figure.layout.to_plotly_json(), overwrite=True)


def static_mimebundle(figure: go.Figure, text: str) -> dict:
    """What a saved notebook keeps: ``image/png`` where kaleido can render, else ``text/html``."""
    png = figure_png(figure)
    if png is not None:
        return {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": text}
    html = figure.to_html(full_html=False, include_plotlyjs="cdn")
    return {"text/html": html, "text/plain": text}


def live_and_static_mimebundle(figure: go.Figure, live, text: str, include=None,
                               exclude=None) -> dict:
    """A widget's ``_repr_mimebundle_``: the interactive view of ``live`` (a widget or a
    figure) where a frontend renders it, with the static copy of ``figure`` that a saved
    notebook keeps, and ``text`` as plain text."""
    bundle = static_mimebundle(figure, text)
    bundle.update(live._repr_mimebundle_(include=include, exclude=exclude) or {})
    bundle["text/plain"] = text
    return bundle
