"""A run directory: made once by a new run, never overwritten, addressed relative to itself.

A new run needs a directory that is absent or empty. One that holds anything is refused before any
data or weights are read, with the two ways on: continue the run in it (``--resume``) or choose
another path; ``overwrite=True`` (``--overwrite``) replaces an earlier run, a directory holding
``run_config.json``, and never any other directory. The directory is made only once the run is
built (options, data, backbone and device checked), and a start that fails while writing its first
files removes what it made, so a refused run leaves nothing behind.

A run's files are always found relative to the directory the run is in, never through the path
recorded in its ``run_config.json``: a copied or moved run continues where it is, and writes only
there. When a run continues, the temporary files of atomic writes that a killed process left
(``.checkpoint.pt.<random>.tmp``, see :func:`mtl_tutor.checkpoint.atomic_write`) are removed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

RUN_CONFIG = "run_config.json"
TRAINING_STATE = "checkpoint.pt"  # everything a run needs to continue (mtl_tutor.checkpoint)
STALE_TEMPORARIES = ".*.*.tmp"  # atomic_write's f".{name}.{random}.tmp"


class RunDirectoryError(OSError):
    """A run directory that cannot be used for what was asked: it holds another run, is a file,
    or cannot be written. The message names it and says what to do instead."""


def is_run_directory(path: Path) -> bool:
    """Whether ``path`` holds a run (its ``run_config.json``)."""
    return (path / RUN_CONFIG).is_file()


def check_new_run_directory(path: str | Path, overwrite: bool = False) -> None:
    """Refuse, before anything is read or written, a directory a new run cannot be made in."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunDirectoryError(f"{path} is a file, not a run directory; choose another --out")
    if path.is_dir() and any(path.iterdir()):
        if not is_run_directory(path):
            raise RunDirectoryError(
                f"{path} is not empty and holds no run ({RUN_CONFIG}); a new run needs an empty "
                "or new directory: choose another --out (--overwrite replaces only an earlier run)")
        if not overwrite and not (path / TRAINING_STATE).is_file():
            raise RunDirectoryError(
                f"{path} already holds a run that saved no {TRAINING_STATE} to continue from: "
                "choose another --out, or --overwrite replaces that run")
        if not overwrite:
            raise RunDirectoryError(
                f"{path} already holds a run: continue it with `mtl-tutor train --resume {path}`, "
                "or choose another --out (--overwrite replaces that run)")
    existing = next(p for p in (path, *path.parents) if p.exists() or p == Path(p.anchor))
    if not existing.is_dir():
        raise RunDirectoryError(f"cannot make run directory {path}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunDirectoryError(f"cannot make run directory {path}: {existing} is not writable")


def make_run_directory(path: str | Path, write_files: Callable[[Path], None],
                       overwrite: bool = False) -> Path:
    """Make the directory of a new run (replacing an earlier run there when ``overwrite``) and
    call ``write_files(path)``; if either fails, remove what was made and re-raise (an
    ``OSError`` as a :class:`RunDirectoryError` naming the directory)."""
    path = Path(path)
    check_new_run_directory(path, overwrite)
    made = [p for p in (path, *path.parents) if not p.exists()]
    replaced = overwrite and is_run_directory(path)
    try:
        if replaced:
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        write_files(path)
    except BaseException as e:
        _remove_contents(path)
        for directory in [path] if replaced else made:  # deepest first; made ones only
            try:
                directory.rmdir()
            except OSError:
                break
        if isinstance(e, OSError) and not isinstance(e, RunDirectoryError):
            raise RunDirectoryError(f"cannot make run directory {path}: "
                                    f"{e.strerror or e} ({e.filename or path})") from e
        raise
    return path


def _remove_contents(path: Path) -> None:
    for child in path.iterdir() if path.is_dir() else ():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def remove_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Remove the temporary files that interrupted atomic writes left in ``run_dir``."""
    stale = sorted(Path(run_dir).glob(STALE_TEMPORARIES))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
