"""Every notebook, and every solutions notebook, runs end to end in smoke mode.

Papermill executes each one with ``MODE="smoke"`` (the tiny random BERT on the synthetic corpus,
a few steps). The test fails on any cell error; when the first output is not the banner line
``mtl-tutor mode=smoke backbone=<name> data=synthetic rows=<n>``; when the run draws another
number of figures (PNG outputs) than the committed notebook, since a notebook draws the same
figures in every mode; and when a cell marked ``# NBVAL_CHECK_OUTPUT`` prints something other
than its committed output. The committed notebooks hold the outputs of a ``"cpu"`` run
(MiniLM-L6 on the CS224N data), so only cells whose output does not depend on the mode carry
that marker. The check is nbval's lax mode on the papermill run (nbval's own marker parsing,
stream coalescing and sanitize file ``notebooks/nbval_sanitize.cfg``), so each notebook executes
once. A notebook's work folder (its data and runs) must be gone when its kernel stops: a test
session that left every run's checkpoints behind once filled a CI machine's disk.

nbval itself checks the committed notebooks the same way, executing them again with their own
``MODE = None`` (``"cpu"`` where the CS224N data is found, else ``"smoke"``)::

    pytest --nbval-lax --nbval-sanitize-with notebooks/nbval_sanitize.cfg notebooks

To execute the notebooks and store them with their outputs, lean (no widget state, the PNG
copies of the figures kept): ``make notebooks``, i.e. ``python -m mtl_tutor.notebook_run``
(``--only 03,04`` for some of them, ``--mode smoke`` for another mode; see that module).
"""

from __future__ import annotations

import re
import tempfile
import time
import warnings
from pathlib import Path

import nbformat
import pytest
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from mtl_tutor.notebook_run import execute, figure_count, notebook_paths

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SANITIZE = NOTEBOOKS / "nbval_sanitize.cfg"
ALL = notebook_paths(NOTEBOOKS)
CHAPTERS = [p for p in ALL if p.parent == NOTEBOOKS]
SOLUTIONS = [p for p in ALL if p.parent != NOTEBOOKS]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TIMEOUT_PER_CELL = 300  # a smoke-mode cell takes seconds; the longest well under a minute

BANNER = re.compile(r"mtl-tutor mode=(?P<mode>smoke|cpu|gpu) backbone=\S+ "
                    r"data=(?P<data>cs224n|synthetic) rows=\d+")
MACHINE_PATHS = ("../shared", "/work/", "/home/", "/Users/")


def execute_smoke(path: Path, output: Path) -> nbformat.NotebookNode:
    """Run ``path`` in smoke mode; once more in a fresh kernel if a cell hangs.

    kaleido's shared Chromium, which draws the figures' PNG copies, can on rare occasions stop
    answering a render request (plotly/Kaleido#441), and the cell then waits forever. Such a
    hang ends at the cell timeout, with a warning, and the notebook is run again from the start;
    a second timeout, or any cell error, fails the test.
    """
    try:
        return execute(path, output, {"MODE": "smoke"}, TIMEOUT_PER_CELL)
    except (CellTimeoutError, DeadKernelError) as e:
        warnings.warn(f"{path.name}: {type(e).__name__} ({e}); running it once more",
                      stacklevel=2)
        return execute(path, output, {"MODE": "smoke"}, TIMEOUT_PER_CELL)


def checked_outputs(notebook) -> list[tuple[str, list]]:
    """(source, sanitized outputs) of each cell marked ``# NBVAL_CHECK_OUTPUT``."""
    from nbval.plugin import coalesce_streams, find_comment_markers, get_sanitize_patterns

    patterns = get_sanitize_patterns(SANITIZE.read_text(encoding="utf-8"))

    def sanitize(text: str) -> str:
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


def first_output_line(notebook) -> str:
    """The first line of the notebook's first output (its banner), '' when it has none."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            return text.splitlines()[0] if text else ""
    return ""


def work_folders() -> set[str]:
    """The notebooks' work folders (``mtl-tutor-*``) in the temporary folder the kernels use.
    (Not a TMPDIR of the test's own: with TMPDIR in a test's tmp_path, a long path, the Chromium
    that draws the figures' PNG copies never answered a render request.)"""
    return {p.name for p in Path(tempfile.gettempdir()).glob("mtl-tutor-*")}


def parameters_cell(notebook):
    cells = [cell for cell in notebook.cells
             if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", [])]
    return cells[0] if len(cells) == 1 else None


@pytest.mark.slow
@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_mode(path, tmp_path):
    committed = nbformat.read(path, as_version=4)
    before = work_folders()
    started = time.perf_counter()
    executed = execute_smoke(path, tmp_path / path.name)
    print(f"{path.name}: {time.perf_counter() - started:.1f} s")
    left = sorted(work_folders() - before)
    assert not left, f"{path.name}: its work folder outlived the kernel: {left}"
    banner = BANNER.fullmatch(first_output_line(executed))
    assert banner and banner["mode"] == "smoke" and banner["data"] == "synthetic", (
        f"{path.name}: the first output is {first_output_line(executed)!r}, not the banner")
    assert figure_count(executed) == figure_count(committed), (
        f"{path.name}: {figure_count(executed)} figures in smoke mode, "
        f"{figure_count(committed)} in the committed notebook")
    expected, got = checked_outputs(committed), checked_outputs(executed)
    assert [source for source, _ in got] == [source for source, _ in expected]
    for (source, want), (_, have) in zip(expected, got):
        assert have == want, f"{path.name}: checked cell changed its output:\n{source}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_notebook_has_a_mode_parameter_and_starts_with_its_banner(path):
    notebook = nbformat.read(path, as_version=4)
    parameters = parameters_cell(notebook)
    assert parameters is not None, f"{path.name}: needs exactly one cell tagged 'parameters'"
    assert parameters.source.strip() == "MODE = None", (
        f"{path.name}: the parameters cell must read 'MODE = None', got {parameters.source!r}")
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code[0] is parameters and "notebook_mode(MODE" in code[1].source, (
        f"{path.name}: the first code cell after the parameters must call notebook_mode(MODE, ...)")
    assert BANNER.fullmatch(first_output_line(notebook)), (
        f"{path.name}: the stored notebook does not start with the banner line")


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_notebook_names_no_machine_path(path):
    """Neither a cell nor its stored outputs (a warning, a notice) name a folder of the machine
    the notebook was written or run on."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        texts = [cell.source] + [output.get("text") or output.get("data", {}).get("text/plain", "")
                                 for output in cell.get("outputs", [])]
        found = [name for name in MACHINE_PATHS if any(name in text for text in texts)]
        assert not found, f"{path.name}: cell {cell.get('id')} names {found}"


def test_every_chapter_has_its_solutions():
    chapters = {p.name[:2] for p in CHAPTERS}
    solved = {p.name[:2] for p in SOLUTIONS}
    assert chapters and chapters == solved, f"chapters without solutions: {chapters - solved}"


def test_a_notebook_whose_cell_hangs_runs_once_more_and_a_second_hang_fails(monkeypatch,
                                                                            tmp_path):
    calls = []

    def hangs_first(path, output, parameters, timeout):
        calls.append((parameters, timeout))
        if len(calls) != 2:  # the second call is the only one that finishes
            raise CellTimeoutError(f"A cell timed out after {timeout} seconds.")
        return "executed"

    monkeypatch.setitem(globals(), "execute", hangs_first)
    with pytest.warns(UserWarning, match="CellTimeoutError.*running it once more"):
        assert execute_smoke(ALL[0], tmp_path / "out.ipynb") == "executed"
    assert calls == [({"MODE": "smoke"}, TIMEOUT_PER_CELL)] * 2
    with pytest.warns(UserWarning), pytest.raises(CellTimeoutError):
        execute_smoke(ALL[0], tmp_path / "out.ipynb")  # the third and fourth calls both hang
