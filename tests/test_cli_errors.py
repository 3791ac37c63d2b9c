"""The command line's failures, run as a user runs them (``python -m mtl_tutor.cli``): each ends
in one line on stderr naming the option, file or step, with its documented exit code, and never
a traceback (unless --debug asks for it)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mtl_tutor.cli import EXIT_CODES

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
DOCUMENTED = {int(code) for code in re.findall(r"^  (\d+) ", EXIT_CODES, re.MULTILINE)}
TINY = ["--backbone", "tiny", "--max-steps", "2", "--batch-size", "8", "--max-length", "32",
        "--no-progress"]


def run_cli(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtl_tutor.cli", *argv], env=ENV, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


# The command as the installed `mtl-tutor` starts it (mtl_tutor.__main__), with a SIGINT sent to
# itself when torch is first imported (by the command line's module): an interrupt while starting.
INTERRUPTED_WHILE_STARTING = """
import builtins, os, runpy, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
real_import = builtins.__import__
def interrupting_import(name, *args, **kwargs):
    if name == "torch" and "torch" not in sys.modules:
        os.kill(os.getpid(), signal.SIGINT)
    return real_import(name, *args, **kwargs)
builtins.__import__ = interrupting_import
sys.argv = ["mtl-tutor", *sys.argv[1:]]
runpy.run_module("mtl_tutor", run_name="__main__")
"""


def damaged_copy(run: Path, tmp_path: Path, name: str, content: bytes) -> Path:
    copy = Path(shutil.copytree(run, tmp_path / "damaged"))
    (copy / name).write_bytes(content)
    return copy


def truncated(run: Path, name: str) -> bytes:
    content = (run / name).read_bytes()
    return content[:len(content) // 2]


NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
CASES = {  # name: (arguments, exit code, what stderr's one line holds)
    "lr nan": (["train", *TINY, "--data", "DATA", "--out", "NEW", "--lr", "nan"], 2,
               ["error: --lr: lr must be a finite number > 0, got nan"]),
    "head-lr -1": (["train", *TINY, "--data", "DATA", "--out", "NEW", "--head-lr", "-1"], 2,
                   ["error: --head-lr: head_lr must be"]),
    "max-grad-norm -1": (["train", *TINY, "--data", "DATA", "--out", "NEW",
                          "--max-grad-norm", "-1"], 2, ["error: --max-grad-norm: max_grad_norm"]),
    "max-length 100000": (["train", *TINY, "--data", "DATA", "--out", "NEW",
                           "--max-length", "100000"], 2, ["error: --max-length: max_length must "
                                                          "be <= 128"]),
    "device cuda without a GPU": (["train", *TINY, "--data", "DATA", "--out", "NEW",
                                   "--device", "cuda"], 2,
                                  ["error: --device: device is 'cuda', but this machine has no "
                                   "CUDA GPU"]),
    "out holds a run": (["train", *TINY, "--data", "DATA", "--out", "RUN"], 4,
                        ["already holds a run", "--resume"]),
    "out is a file": (["train", *TINY, "--data", "DATA", "--out", "RUN/heads.json"], 4,
                      ["heads.json is a file"]),
    "truncated checkpoint": (["train", "--resume", "CHECKPOINT"], 3,
                             ["checkpoint.pt is damaged"]),
    "damaged model file": (["eval", "--run", "MODEL", "--data", "DATA"], 3,
                           ["model.safetensors is damaged"]),
    "invalid run_config.json": (["eval", "--run", "CONFIG", "--data", "DATA"], 3,
                                ["run_config.json is damaged: not valid JSON"]),
    "divergence": (["train", *TINY, "--data", "DATA", "--out", "NEW", "--lr", "1e9",
                    "--head-lr", "1e9", "--max-grad-norm", "none", "--warmup-fraction", "0"], 5,
                   ["is NaN or infinite; training stopped", "last_good.safetensors",
                    "a lower --lr (it is 1e+09", "clipping the gradient's norm"]),
}


@pytest.mark.parametrize("case", [pytest.param(name, marks=NO_GPU) if "cuda" in name else name
                                  for name in CASES])
def test_a_failure_is_one_line_with_its_documented_exit_code(case, finished_run, synthetic_dir,
                                                             tmp_path):
    argv, code, fragments = CASES[case]
    places = {"DATA": synthetic_dir, "NEW": tmp_path / "new", "RUN": finished_run}
    damaged = {"CHECKPOINT": "checkpoint.pt", "MODEL": "model.safetensors",
               "CONFIG": "run_config.json"}
    for word, name in damaged.items():
        if word in argv:
            content = b"{" if name.endswith(".json") else truncated(finished_run, name)
            places[word] = damaged_copy(finished_run, tmp_path, name, content)
    argv = [str(places[a]) if a in places else a.replace("RUN", str(finished_run))
            for a in argv]
    before = {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()}
    done = run_cli(*argv)
    assert done.returncode == code and code in DOCUMENTED, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: ")
    for fragment in fragments:
        assert fragment in done.stderr
    assert "weights_only" not in done.stderr
    assert {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()} == before
    if code == 2:  # refused before step 0: nothing made
        assert not (tmp_path / "new").exists()


def test_debug_shows_the_traceback_before_the_line(finished_run, synthetic_dir):
    done = run_cli("train", *TINY, "--data", str(synthetic_dir), "--out", str(finished_run),
                   "--debug")
    assert done.returncode == 4 and "Traceback" in done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"error: {finished_run} already holds a run")


def test_an_interrupt_while_the_command_starts_ends_in_one_line(synthetic_dir, tmp_path):
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_WHILE_STARTING, "train", *TINY,
                           "--data", str(synthetic_dir), "--out", str(tmp_path / "run")],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 130 and 130 in DOCUMENTED
    assert done.stderr == "error: interrupted while starting: nothing was done\n"
    assert not (tmp_path / "run").exists()
