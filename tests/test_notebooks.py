"""Every notebook, and every solutions notebook, runs end to end in smoke mode.

Papermill executes each one with ``SMOKE=True`` (tiny backbone, synthetic corpus, a few steps);
the test fails on any cell error, when the run draws fewer figures (PNG outputs) than the
committed notebook shows, and when a cell marked ``# NBVAL_CHECK_OUTPUT`` prints something other
than its committed output. That last check is nbval's lax mode on the papermill run (nbval's own
marker parsing, stream coalescing and sanitize file ``notebooks/nbval_sanitize.cfg``), so each
notebook executes once. nbval itself checks the committed notebooks the same way, executing them
again: ``pytest --nbval-lax --nbval-sanitize-with notebooks/nbval_sanitize.cfg notebooks``.

Committed notebooks are stored executed in smoke mode. To re-execute and store some::

    python tests/test_notebooks.py notebooks/03_gradient_conflict_and_pcgrad.ipynb ...

which writes them back without widget state or widget views (the PNG copies stay, so a reader
sees every figure before running anything) and without execution timings.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SANITIZE = NOTEBOOKS / "nbval_sanitize.cfg"
CHAPTERS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((NOTEBOOKS / "solutions").glob("[0-9][0-9]_*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TIMEOUT_PER_CELL = 600


def execute(path: Path, output: Path, parameters: dict | None = None):
    """Run a notebook with papermill in its own folder; return the executed notebook."""
    import papermill

    papermill.execute_notebook(
        str(path), str(output), parameters=parameters, cwd=str(path.parent),
        kernel_name="python3", progress_bar=False, store_widget_state=False,
        execution_timeout=TIMEOUT_PER_CELL,
    )
    return nbformat.read(output, as_version=4)


def figure_count(notebook) -> int:
    return sum("image/png" in output.get("data", {})
               for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.get("outputs", []))


def checked_outputs(notebook) -> list[tuple[str, list]]:
    """(source, sanitized outputs) of each cell marked ``# NBVAL_CHECK_OUTPUT``."""
    from nbval.plugin import coalesce_streams, find_comment_markers, get_sanitize_patterns

    patterns = get_sanitize_patterns(SANITIZE.read_text(encoding="utf-8"))

    def sanitize(text: str) -> str:
        import re

        for regex, replacement in patterns:
            text = re.sub(regex, replacement, text)
        return text

    checked = []
    for cell in notebook.cells:
        if cell.cell_type != "code" or not dict(find_comment_markers(cell.source)).get("check"):
            continue
        outputs = []
        for output in coalesce_streams([nbformat.from_dict(o) for o in cell.outputs]):
            if output.output_type == "stream":
                outputs.append((output.name, sanitize(output.text)))
            elif WIDGET_VIEW in output.get("data", {}):
                continue  # a live widget (e.g. a progress bar): stored notebooks drop these
            elif "text/plain" in output.get("data", {}):
                outputs.append(("text/plain", sanitize(output.data["text/plain"])))
        checked.append((cell.source, outputs))
    return checked


def has_smoke_parameters(notebook) -> bool:
    return any("parameters" in cell.metadata.get("tags", []) and "SMOKE = True" in cell.source
               for cell in notebook.cells if cell.cell_type == "code")


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS + SOLUTIONS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_mode(path, tmp_path):
    committed = nbformat.read(path, as_version=4)
    assert has_smoke_parameters(committed), f"{path.name}: no 'parameters' cell with SMOKE = True"
    started = time.perf_counter()
    executed = execute(path, tmp_path / path.name, {"SMOKE": True})
    print(f"{path.name}: {time.perf_counter() - started:.1f} s")
    assert figure_count(executed) >= figure_count(committed)
    expected, got = checked_outputs(committed), checked_outputs(executed)
    assert [source for source, _ in got] == [source for source, _ in expected]
    for (source, want), (_, have) in zip(expected, got):
        assert have == want, f"{path.name}: checked cell changed its output:\n{source}"


def test_every_chapter_has_its_solutions():
    chapters = {p.name[:2] for p in CHAPTERS}
    solved = {p.name[:2] for p in SOLUTIONS}
    assert chapters and chapters == solved, f"chapters without solutions: {chapters - solved}"


def store_executed(path: Path) -> None:
    """Execute ``path`` in smoke mode (its own defaults) and write it back, lean."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        notebook = execute(path, Path(tmp) / path.name)
        seconds = time.perf_counter() - started
    notebook.metadata.pop("papermill", None)
    for cell in notebook.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        # A widget view without its state shows nothing; keep its PNG copy where it has one.
        cell.outputs = [output for output in cell.outputs
                        if WIDGET_VIEW not in output.get("data", {})
                        or "image/png" in output.data]
        for output in cell.outputs:
            output.get("data", {}).pop(WIDGET_VIEW, None)
    nbformat.write(notebook, path)
    print(f"{path.relative_to(ROOT)}: executed in {seconds:.1f} s, "
          f"{figure_count(notebook)} figures, {path.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        store_executed(Path(name).resolve())
