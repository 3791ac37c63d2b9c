"""Where the task data is: ``--data``, else ``$MTL_TUTOR_DATA``, else the user's data directory.

``mtl-tutor data download`` writes to the same place (:func:`data_home`), so after one download
every command and notebook finds the data without being told where it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import platformdirs

from .tasks import MULTITASK, get_task

DATA_ENV = "MTL_TUTOR_DATA"
DOWNLOAD_COMMAND = "mtl-tutor data download"


class DataNotFoundError(FileNotFoundError):
    """No data where the package looked; the message says where it looked and how to fetch it."""


def data_home() -> Path:
    """``$MTL_TUTOR_DATA`` when set, else ``cs224n`` in the user's data directory (platformdirs:
    ``~/.local/share/mtl-tutor/cs224n`` on Linux)."""
    configured = os.environ.get(DATA_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("mtl-tutor", appauthor=False)) / "cs224n"


def missing_files(directory: str | Path, tasks: Iterable[str] = MULTITASK,
                  splits: Iterable[str] = ("train", "dev")) -> list[str]:
    """For each (task, split) with no file in ``directory``, the names it may have."""
    directory = Path(directory)
    missing = []
    for task in tasks:
        for split in splits:
            names = get_task(task).file_names(split)
            if not any((directory / name).is_file() for name in names):
                missing.append(" or ".join(names))
    return missing


def locate_data(data: str | Path | None = None, tasks: Iterable[str] = MULTITASK,
                splits: Iterable[str] = ("train", "dev")) -> Path:
    """``data`` when given (its files are checked when they are read), else :func:`data_home`
    when it holds a file of every task and split, else :class:`DataNotFoundError`."""
    if data is not None and str(data) != "":
        return Path(data)
    home = data_home()
    missing = missing_files(home, tasks, splits)
    if missing:
        where = f"${DATA_ENV}" if os.environ.get(DATA_ENV, "").strip() else "the data directory"
        raise DataNotFoundError(
            f"no CS224N data in {home} ({where}; missing {missing[0]}"
            f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}); fetch it with: "
            f"{DOWNLOAD_COMMAND}")
    return home
