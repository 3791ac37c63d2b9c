"""A smaller copy of a data directory: a seeded sample of each file's rows, rows kept verbatim.

Notebooks that run on a laptop CPU train on a few thousand rows of the real data; the copy keeps
the format (header, index columns, CSV quoting, defective rows too) so it reads exactly like the
original, under the ``{task}-{split}.csv`` names.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Mapping
from pathlib import Path

from .io import decode_file, records, task_file


def write_sample(source: Path, dest: Path, rows: int | None, seed: int) -> int:
    """Copy the header and ``rows`` rows of ``source`` (all when None or when it has fewer),
    drawn with ``seed`` and kept in file order, to ``dest``; return the rows written."""
    header, *body = [fields for _, fields in records(source, decode_file(source))]
    if rows is not None and rows < len(body):
        keep = sorted(random.Random(seed).sample(range(len(body)), rows))
        body = [body[i] for i in keep]
    with dest.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(body)
    return len(body)


def write_subset(source: str | Path, dest: str | Path, tasks: Iterable[str],
                 rows: Mapping[str, int | None], *, seed: int = 0) -> dict[str, dict[str, int]]:
    """Write ``dest/{task}-{split}.csv`` for each task and each split in ``rows`` (split -> rows
    per task, None for all), from the files of ``source`` under either of their names; return
    task -> split -> rows written."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[str, int]] = {}
    for task in tasks:
        for split, count in rows.items():
            if count is not None and count < 1:
                raise ValueError(f"rows[{split!r}] must be >= 1 or None, got {count}")
            written.setdefault(task, {})[split] = write_sample(
                task_file(source, task, split), dest / f"{task}-{split}.csv", count, seed)
    return written
