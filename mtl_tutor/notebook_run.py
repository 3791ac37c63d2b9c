"""Execute the notebooks and store them with their outputs (``make notebooks``).

::

    python -m mtl_tutor.notebook_run [--mode cpu] [--data DIR] [--only 03,04]

Each notebook (the chapters, then their solutions) runs through papermill in its own folder with
its ``MODE`` parameter set to ``--mode``: ``"cpu"`` by default, the embedded MiniLM-L6 on the
CS224N data, which is what the stored outputs show. The notebook is then written back lean: no
widget state or widget views (a figure's PNG copy stays, so a reader sees every figure before
running anything), no execution timings or papermill metadata, and without papermill's injected
parameters cell, so the stored notebook still reads ``MODE = None``. Each notebook's time is
printed as it finishes, then the total. A notebook that fails is left as it was; the others still
run, and the command exits with status 1 naming the failures.

``--data`` is handed to the notebooks' kernels as ``$MTL_TUTOR_DATA``; by default the data is
located as every command locates it (``$MTL_TUTOR_DATA``, else where ``mtl-tutor data download``
puts it). ``--only`` takes comma-separated names; each selects the notebooks whose file name
starts with it (``03`` selects chapter 03 and its solutions).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import nbformat

from .data.location import DATA_ENV, DOWNLOAD_COMMAND, locate_data, missing_files
from .notebook_mode import MODES

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
INJECTED = "injected-parameters"  # papermill's tag for the cell it adds after "parameters"


def notebook_paths(folder: Path = NOTEBOOKS) -> list[Path]:
    """The chapters ``NN_*.ipynb`` of ``folder``, then the solutions in ``folder/solutions``."""
    return (sorted(folder.glob("[0-9][0-9]_*.ipynb"))
            + sorted((folder / "solutions").glob("[0-9][0-9]_*.ipynb")))


def select(paths: Sequence[Path], names: Sequence[str]) -> list[Path]:
    """The ``paths`` whose file name starts with one of ``names`` (all of them for no names).
    A name that selects nothing is a ValueError listing the notebooks."""
    if not names:
        return list(paths)
    unmatched = [name for name in names if not any(p.name.startswith(name) for p in paths)]
    if unmatched:
        raise ValueError(f"--only: no notebook name starts with {', '.join(unmatched)}; "
                         f"the notebooks are {', '.join(p.stem for p in paths)}")
    return [p for p in paths if any(p.name.startswith(name) for name in names)]


def execute(path: Path, output: Path, parameters: dict | None = None,
            timeout: float | None = None) -> nbformat.NotebookNode:
    """Run ``path`` with papermill in the notebook's own folder, writing the executed notebook to
    ``output``; ``timeout``: seconds per cell (None: no limit). Returns the executed notebook."""
    import papermill

    papermill.execute_notebook(
        str(path), str(output), parameters=parameters, cwd=str(path.parent),
        kernel_name="python3", progress_bar=False, store_widget_state=False,
        execution_timeout=timeout,
    )
    return nbformat.read(output, as_version=4)


def figure_count(notebook: nbformat.NotebookNode) -> int:
    """How many outputs of the notebook's code cells carry a PNG image."""
    return sum("image/png" in output.get("data", {})
               for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.get("outputs", []))


def lean(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``notebook`` as it is stored: papermill's injected parameters cell removed, no widget
    state or views (their PNG copies kept), no papermill metadata or execution timings, and the
    execution counts renumbered from 1. Changes ``notebook`` in place and returns it."""
    notebook.metadata.pop("papermill", None)
    notebook.metadata.pop("widgets", None)
    notebook.cells = [cell for cell in notebook.cells
                      if INJECTED not in cell.metadata.get("tags", [])]
    count = 0
    for cell in notebook.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        count += 1
        cell.execution_count = count
        # A widget view without its state shows nothing; keep its PNG copy where it has one.
        cell.outputs = [output for output in cell.outputs
                        if WIDGET_VIEW not in output.get("data", {})
                        or "image/png" in output.data]
        for output in cell.outputs:
            output.get("data", {}).pop(WIDGET_VIEW, None)
            if output.output_type == "execute_result":
                output.execution_count = count
    return notebook


def store_executed(path: Path, mode: str, timeout: float | None = None) -> float:
    """Execute ``path`` with ``MODE=mode`` and write it back lean; return the seconds it took."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        notebook = execute(path, Path(tmp) / path.name, {"MODE": mode}, timeout)
        seconds = time.perf_counter() - started
    nbformat.write(lean(notebook), path)
    return seconds


def failure(error: Exception) -> str:
    """One line saying why a notebook failed: the failing cell's error for a cell error."""
    if hasattr(error, "ename"):  # papermill's PapermillExecutionError
        return f"cell {error.exec_count}: {error.ename}: {error.evalue}"
    return f"{type(error).__name__}: {error}"


def run(paths: Sequence[Path], mode: str, timeout: float | None = None) -> list[Path]:
    """Store each of ``paths`` executed in ``mode``, printing each time and the total; return
    the notebooks that failed."""
    failed, total = [], 0.0
    for path in paths:
        started = time.perf_counter()
        try:
            seconds = store_executed(path, mode, timeout)
        except Exception as error:  # noqa: BLE001 (report it, go on with the next notebook)
            seconds = time.perf_counter() - started
            failed.append(path)
            print(f"{path.name}: FAILED after {seconds:.0f} s: {failure(error)}", flush=True)
        else:
            print(f"{path.name}: {seconds:.0f} s", flush=True)
        total += seconds
    print(f"{len(paths)} notebooks in {total:.0f} s ({total / 60:.1f} min), mode={mode}"
          + (f"; {len(failed)} failed" if failed else ""), flush=True)
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mtl_tutor.notebook_run",
        description="Execute the notebooks in one mode and store them with their outputs.")
    parser.add_argument("--mode", choices=MODES, default="cpu",
                        help="the notebooks' MODE (default: cpu, the stored outputs' mode)")
    parser.add_argument("--data", help=f"the CS224N data folder (default: ${DATA_ENV}, else "
                                       "where `mtl-tutor data download` puts it)")
    parser.add_argument("--only", default="",
                        help="comma-separated notebook names or prefixes, e.g. 03,04")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS,
                        help="the folder of the notebooks (default: the project's)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed per cell (default: no limit)")
    args = parser.parse_args(argv)
    try:
        paths = select(notebook_paths(args.notebooks),
                       [name.strip() for name in args.only.split(",") if name.strip()])
        if not paths:
            raise ValueError(f"--notebooks: no notebooks NN_*.ipynb in {args.notebooks}")
        if args.mode != "smoke":
            data = locate_data(args.data).resolve()
            missing = missing_files(data)
            if missing:
                raise FileNotFoundError(f"--data: {data} has no {missing[0]}; fetch the data "
                                        f"with: {DOWNLOAD_COMMAND}")
            os.environ[DATA_ENV] = str(data)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    return 1 if run(paths, args.mode, args.timeout) else 0


if __name__ == "__main__":
    sys.exit(main())
