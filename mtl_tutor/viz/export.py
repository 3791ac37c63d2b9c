"""Static export of figures: HTML always, PNG through kaleido where a Chromium can be found.

kaleido 1.x renders with a Chromium it drives itself. It looks for the browser on ``PATH`` (the
Debian ``chromium`` package puts it at ``/usr/bin/chromium``) or at ``BROWSER_PATH``; we also
honour ``CHROMIUM``, the variable the browser tests use, by copying it into ``BROWSER_PATH``.
"""

from __future__ import annotations

import os
import shutil
import warnings
from functools import cache
from pathlib import Path

import plotly.graph_objects as go

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium: ``$CHROMIUM``, ``$BROWSER_PATH``, then the usual names on ``PATH``."""
    for variable in ("CHROMIUM", "BROWSER_PATH"):
        path = os.environ.get(variable)
        if path and Path(path).is_file():
            return path
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@cache
def _start_png_renderer() -> bool:
    """Start kaleido's shared Chromium once per process; False when PNG export cannot work."""
    chromium = find_chromium()
    try:
        import kaleido
    except ImportError:
        return False
    if chromium is None:
        return False
    os.environ.setdefault("BROWSER_PATH", chromium)
    kaleido.start_sync_server(silence_warnings=True)
    return True


def png_available() -> bool:
    """Whether :func:`figure_png` can render (kaleido installed and a Chromium found)."""
    return _start_png_renderer()


def figure_png(fig: go.Figure, width: int = 900, height: int = 600) -> bytes | None:
    """The figure as PNG bytes, or None where no renderer is available."""
    if not png_available():
        return None
    with warnings.catch_warnings():  # plotly warns that per-call options go unused by a server
        warnings.simplefilter("ignore", UserWarning)
        return go.Figure(fig).to_image(format="png", width=width, height=height)


def save_figure(fig: go.Figure, path_without_ext: str | Path,
                plotly_js: bool | str = True) -> list[Path]:
    """Write ``path.html`` and ``path.png`` when possible. ``plotly_js``: True inlines plotly.js
    (the page opens offline), ``"cdn"`` loads it from plotly's CDN (a few kB, for files kept
    under version control).

    Returns the paths written. A ``go.FigureWidget`` is accepted and saved as its current state.
    The page's div is named after the file, so saving the same figure again writes the same bytes.
    """
    stem = Path(path_without_ext)
    stem.parent.mkdir(parents=True, exist_ok=True)
    figure = go.Figure(fig)
    html_path = stem.with_name(stem.name + ".html")
    figure.write_html(html_path, include_plotlyjs=plotly_js, div_id=stem.name)
    written = [html_path]
    png = figure_png(figure)
    if png is not None:
        png_path = stem.with_name(stem.name + ".png")
        png_path.write_bytes(png)
        written.append(png_path)
    return written
