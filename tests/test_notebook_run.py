"""`python -m mtl_tutor.notebook_run` (`make notebooks`): which notebooks it runs, how it stores
them (lean, with the parameters cell as committed), and how it reports times and failures."""

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from mtl_tutor.data import DATA_ENV
from mtl_tutor.notebook_run import WIDGET_VIEW, lean, main, notebook_paths, run, select

ROOT = Path(__file__).resolve().parents[1]


def write_notebook(path: Path, *sources: str) -> Path:
    """A notebook whose first cell is the parameters cell ``MODE = None``."""
    parameters = new_code_cell("MODE = None", metadata={"tags": ["parameters"]})
    nbformat.write(new_notebook(cells=[parameters, *(new_code_cell(s) for s in sources)],
                                metadata={"kernelspec": {"name": "python3",
                                                         "display_name": "Python 3",
                                                         "language": "python"}}), path)
    return path


def test_chapters_come_first_then_their_solutions():
    paths = notebook_paths(ROOT / "notebooks")
    chapters = [p for p in paths if p.parent.name == "notebooks"]
    assert paths[:len(chapters)] == chapters and chapters[0].name.startswith("00_")
    assert all(p.parent.name == "solutions" for p in paths[len(chapters):])


def test_only_selects_by_name_prefix_and_refuses_a_name_that_selects_nothing():
    paths = [Path("nb/03_pcgrad.ipynb"), Path("nb/04_gradvac.ipynb"),
             Path("nb/solutions/03_pcgrad_solutions.ipynb")]
    assert select(paths, []) == paths
    assert select(paths, ["03"]) == [paths[0], paths[2]]
    assert select(paths, ["04_gradvac", "03_pcgrad_sol"]) == [paths[1], paths[2]]
    with pytest.raises(ValueError, match=r"--only: no notebook name starts with 07, 99; .*"
                                         r"03_pcgrad, 04_gradvac"):
        select(paths, ["03", "07", "99"])


def test_lean_drops_the_injected_parameters_widget_state_and_timings():
    figure = {WIDGET_VIEW: {"model_id": "abc"}, "image/png": "iVBOR", "text/plain": "Fig"}
    notebook = new_notebook(cells=[
        new_code_cell("MODE = None", metadata={"tags": ["parameters"]}, execution_count=1),
        new_code_cell('MODE = "cpu"', metadata={"tags": ["injected-parameters"]},
                      execution_count=2),
        new_code_cell("fig", execution_count=3, metadata={"papermill": {"duration": 1.0},
                                                          "execution": {"iopub": "x"}},
                      outputs=[new_output("execute_result", figure, execution_count=3)]),
        new_code_cell("bar", execution_count=4, outputs=[
            new_output("display_data", {WIDGET_VIEW: {"model_id": "def"}, "text/plain": "W"}),
            new_output("stream", name="stdout", text="done\n")]),
    ], metadata={"papermill": {"parameters": {"MODE": "cpu"}}, "widgets": {"state": {}}})
    stored = lean(notebook)
    assert [cell.source for cell in stored.cells] == ["MODE = None", "fig", "bar"]
    assert "papermill" not in stored.metadata and "widgets" not in stored.metadata
    assert [cell.execution_count for cell in stored.cells] == [1, 2, 3]
    fig, bar = stored.cells[1], stored.cells[2]
    assert fig.metadata == {} and fig.outputs[0].execution_count == 2
    assert set(fig.outputs[0].data) == {"image/png", "text/plain"}
    assert [output.output_type for output in bar.outputs] == ["stream"]


def test_cpu_mode_without_data_stops_before_running_anything(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nothing"))
    with pytest.raises(SystemExit) as exit_info:
        main(["--mode", "cpu", "--data", str(tmp_path)])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert f"--data: {tmp_path}" in message and "mtl-tutor data download" in message
    with pytest.raises(SystemExit):
        main(["--mode", "cpu", "--only", "99"])
    assert "--only: no notebook name starts with 99" in capsys.readouterr().err


@pytest.mark.slow
def test_run_stores_each_notebook_executed_and_keeps_a_failing_one_as_it_was(tmp_path, capsys):
    good = write_notebook(tmp_path / "00_good.ipynb", "print(f'ran in {MODE} mode')")
    bad = write_notebook(tmp_path / "01_bad.ipynb", "raise RuntimeError('broken cell')")
    before = bad.read_bytes()
    assert run([good, bad], "smoke", timeout=120) == [bad]
    out = capsys.readouterr().out
    assert "00_good.ipynb: " in out and "01_bad.ipynb: FAILED" in out and "broken cell" in out
    assert "2 notebooks in" in out and "1 failed" in out
    stored = nbformat.read(good, as_version=4)
    assert [cell.source for cell in stored.cells] == ["MODE = None",
                                                      "print(f'ran in {MODE} mode')"]
    assert stored.cells[1].outputs[0].text == "ran in smoke mode\n"
    assert "papermill" not in stored.metadata
    assert bad.read_bytes() == before
