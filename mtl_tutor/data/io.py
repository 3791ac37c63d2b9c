"""Read CS224N-format task files, reporting every defect as ``file:line: reason``.

The format (../shared/data/cs224n/README.md): UTF-8, tab-separated, a header row, a leading unnamed
index column, then the task's columns (:attr:`TaskSpec.columns`), label last; test files have no
label column (the public SST and CFIMDB test inputs carry a second index column, which is skipped).
Fields holding double quotes are CSV-quoted with doubled quotes, so rows are read
with Python's ``csv`` module (delimiter tab), as the course's starter code does; a quoted field
may span several physical lines. Line numbers are physical file lines, 1 being the header.
A data directory names its files ``{task}-{split}.csv`` or as the public release does
(:meth:`TaskSpec.file_names`: ``ids-sst-train.csv``, ``quora-dev.csv``, ``sts-test-student.csv``).

Two kinds of defect:
- file-level (missing file, undecodable bytes, not tab-separated, wrong header, no rows): raise
  :class:`DataFormatError`;
- row-level (wrong number of columns, empty id or sentence, missing, non-numeric, out-of-range or
  non-integral label, a field longer than the ``csv`` module's limit): the row is skipped and
  reported once per file in a :class:`DataWarning` and in ``TaskData.issues``. ``strict=True``
  raises on the first one instead, and a file where more than ``max_defect_fraction`` of the
  rows are defective raises in any case, since it is then most likely not a file of this task.

A row whose id an earlier row of the file has is kept (its prediction is its own: predictions
follow rows, not ids) and reported with both lines in a :class:`DataWarning` and in
``TaskData.duplicates``; ``strict=True`` raises instead.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .tasks import MULTITASK, TaskSpec, get_task


class DataFormatError(ValueError):
    """Not a CS224N file of the task; the message names the file, the line and what was expected."""

    def __init__(self, path: str | Path, line: int | None, reason: str):
        self.path, self.line, self.reason = Path(path), line, reason
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):
        return type(self), (self.path, self.line, self.reason)


class DataWarning(UserWarning):
    """Defective rows were skipped; the message lists each one as ``file:line: reason``."""


@dataclass(frozen=True)
class DataIssue:
    """One skipped row."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class Example:
    """One row. ``label`` is None in test files; class labels are floats with integral values."""

    id: str
    text_a: str
    text_b: str | None
    label: float | None
    line: int


@dataclass
class TaskData:
    """The examples of one file of one task, the rows that were skipped (``issues``) and the
    rows that repeat an earlier row's id (``duplicates``, kept)."""

    task: TaskSpec
    split: str
    path: Path
    examples: list[Example]
    issues: list[DataIssue]
    duplicates: list[DataIssue] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.examples)


def decode_file(path: Path) -> str:
    """The file's text; undecodable bytes raise :class:`DataFormatError` at their line."""
    if not path.is_file():
        raise DataFormatError(path, None, "no such file; expected a CS224N task file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataFormatError(path, None, f"cannot be read ({e.strerror or e})") from e
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataFormatError(path, line, f"undecodable bytes {data[e.start:e.end]!r} at byte "
                                          f"{e.start}; expected UTF-8 text") from e


def records(path: Path, text: str, unreadable: list[DataIssue] | None = None
            ) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(first physical line, fields)`` for every record, header included.

    A record the ``csv`` module cannot read (a field over its size limit,
    ``csv.field_size_limit()``) raises :class:`DataFormatError`, or, given a list
    ``unreadable``, is skipped and appended there; the reader goes on with the next record.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t")
    while True:
        line = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            reason = f"unreadable row ({e}); expected tab-separated fields with CSV quoting"
            if unreadable is None:
                raise DataFormatError(path, line, reason) from e
            unreadable.append(DataIssue(path, line, reason))
            continue
        yield line, fields


def extra_index_columns(header: list[str], task: TaskSpec) -> int:
    """How many index columns precede the usual unnamed one: 1 in the public SST and CFIMDB test
    inputs (header ``0<TAB><TAB>id<TAB>sentence``), 0 elsewhere."""
    first = task.columns[0]
    if first not in header[1:]:
        return 0
    extra = header.index(first) - 1
    return extra if all(not h.strip() or h.strip().isdigit() for h in header[:extra]) else 0


def check_header(path: Path, header: list[str], task: TaskSpec, labelled: bool) -> bool:
    """Validate the header row; return whether the file has the label column."""
    names = list(task.columns if labelled else task.columns[:-1])
    expected = "<TAB>".join(["", *names]) + " (an unnamed index column first)"
    if len(header) == 1:
        comma = " (it looks comma-separated)" if "," in header[0] else ""
        raise DataFormatError(path, 1, f"no tab in the header{comma}; expected tab-separated "
                                       f"columns {expected}")
    if header[1:] == names:
        return labelled
    if not labelled and header[1:] == list(task.columns):
        return True  # a labelled file read for prediction: its labels are ignored
    if labelled and header[1:] == list(task.columns[:-1]):
        raise DataFormatError(path, 1, f"no label column {task.label_column!r} (a test file?); "
                                       f"expected {expected}, or read it with labelled=False")
    raise DataFormatError(path, 1, f"wrong header for task {task.name!r}: expected {expected}, "
                                   f"found {'<TAB>'.join(header)}")


def label_problem(raw: str, task: TaskSpec) -> str | None:
    """Why ``raw`` is not a valid label of ``task``, or None when it is."""
    column = task.label_column
    if not raw.strip():
        return f"missing {column}"
    try:
        value = float(raw)
    except ValueError:
        return f"non-numeric {column} {raw!r}"
    if not math.isfinite(value):
        return f"non-numeric {column} {raw!r}"
    low, high = task.label_range
    if not low <= value <= high:
        return f"{column} {raw!r} outside [{low:g}, {high:g}]"
    if task.label in ("class", "binary") and value != int(value):
        return f"{column} {raw!r} is not an integer class"
    return None


def parse_row(fields: list[str], line: int, task: TaskSpec, has_label: bool,
              labelled: bool) -> Example | str:
    """The row as an :class:`Example`, or the reasons it is defective."""
    names = task.columns if has_label else task.columns[:-1]
    if len(fields) != len(names) + 1:
        return f"expected {len(names) + 1} tab-separated columns, found {len(fields)}"
    values = dict(zip(names, fields[1:], strict=True))
    reasons = [f"empty {c}" for c in ("id", *task.text_columns) if not values[c].strip()]
    if labelled:
        problem = label_problem(values[task.label_column], task)
        reasons += [problem] if problem else []
    if reasons:
        return "; ".join(reasons)
    texts = [values[c].strip() for c in task.text_columns]
    return Example(
        id=values["id"].strip(),
        text_a=texts[0],
        text_b=texts[1] if task.kind == "pair" else None,
        label=float(values[task.label_column]) if labelled else None,
        line=line,
    )


def read_task_file(path: str | Path, task: str | TaskSpec, *, labelled: bool = True,
                   strict: bool = False, max_defect_fraction: float = 0.01,
                   split: str | None = None) -> TaskData:
    """Read one file of ``task``; see the module docstring for how defects are handled.

    labelled: False for test files (no label column; a label column, if present, is ignored).
    split: recorded in the result; by default taken from a ``{task}-{split}.csv`` file name.
    """
    task = get_task(task)
    if not 0.0 <= max_defect_fraction <= 1.0:
        raise ValueError(f"max_defect_fraction must lie in [0, 1], got {max_defect_fraction}")
    path = Path(path)
    if split is None:
        split = task.split_of(path.name) or ""
    issues: list[DataIssue] = []
    rows = records(path, decode_file(path), None if strict else issues)
    try:
        line, header = next(rows)
    except StopIteration:
        raise DataFormatError(path, 1, f"empty file; expected a header row and rows of task "
                                       f"{task.name!r}") from None
    if line != 1:  # the header itself was unreadable
        raise DataFormatError(path, 1, issues[0].reason)
    extra = extra_index_columns(header, task)
    has_label = check_header(path, header[extra:], task, labelled)
    examples = []
    for line, fields in rows:
        parsed = parse_row(fields[extra:], line, task, has_label, labelled)
        if isinstance(parsed, str):
            if strict:
                raise DataFormatError(path, line, parsed)
            issues.append(DataIssue(path, line, parsed))
        else:
            examples.append(parsed)
    issues.sort(key=lambda issue: issue.line)
    total = len(examples) + len(issues)
    if total == 0:
        raise DataFormatError(path, 2, "no rows after the header")
    if len(issues) > max_defect_fraction * total:
        raise DataFormatError(
            path, issues[0].line,
            f"{len(issues)} of {total} rows are defective, more than max_defect_fraction="
            f"{max_defect_fraction:g}, so this is probably not a {task.name!r} file; first: "
            f"{issues[0].reason}",
        )
    if issues:
        listed = "\n".join(str(issue) for issue in issues)
        warnings.warn(f"{path}: skipped {len(issues)} defective row(s) of {total}:\n{listed}",
                      DataWarning, stacklevel=2)
    duplicates = duplicate_ids(path, examples, strict)
    return TaskData(task, split, path, examples, issues, duplicates)


def duplicate_ids(path: Path, examples: list[Example], strict: bool) -> list[DataIssue]:
    """Each row whose id an earlier row has, naming both lines; both rows are kept (a warning),
    or, with ``strict``, the first such row is a :class:`DataFormatError`."""
    first_line: dict[str, int] = {}
    duplicates = []
    for example in examples:
        first = first_line.setdefault(example.id, example.line)
        if first != example.line:
            reason = f"duplicate id {example.id!r} (also {path}:{first})"
            if strict:
                raise DataFormatError(path, example.line, reason + "; ids must be unique")
            duplicates.append(DataIssue(path, example.line, reason))
    if duplicates:
        listed = "\n".join(str(issue) for issue in duplicates)
        warnings.warn(f"{path}: {len(duplicates)} row(s) repeat an earlier row's id; each row "
                      f"is kept and predicted on its own:\n{listed}", DataWarning, stacklevel=3)
    return duplicates


def task_file(data_dir: str | Path, task: str | TaskSpec, split: str) -> Path:
    """The file of ``task`` and ``split`` in ``data_dir``, under either of its names
    (:meth:`TaskSpec.file_names`); a missing file, or one present under both names, is an error
    naming what was expected."""
    task, data_dir = get_task(task), Path(data_dir)
    names = task.file_names(split)
    present = [data_dir / name for name in names if (data_dir / name).is_file()]
    if len(present) > 1:
        raise DataFormatError(data_dir, None, f"both {' and '.join(p.name for p in present)} "
                                              f"hold {task.name!r} {split!r} data; keep one")
    if not present:
        expected = " or ".join(names)
        if not data_dir.is_dir():
            raise DataFormatError(data_dir, None, f"no such directory; expected a folder of "
                                                  f"CS224N task files such as {expected}")
        raise DataFormatError(data_dir / names[0], None,
                              f"no such file; expected {expected} in {data_dir} (the public "
                              f"files: mtl-tutor data download --tasks {task.name})")
    return present[0]


def load_task(data_dir: str | Path, task: str | TaskSpec, split: str, *,
              strict: bool = False) -> TaskData:
    """Read the file of ``task`` and ``split`` in ``data_dir`` (:func:`task_file`); split "test"
    is read without labels."""
    task = get_task(task)
    path = task_file(data_dir, task, split)
    return read_task_file(path, task, labelled=split != "test", strict=strict, split=split)


def load_tasks(data_dir: str | Path, tasks: Iterable[str] = MULTITASK, split: str = "train", *,
               strict: bool = False) -> dict[str, TaskData]:
    """:func:`load_task` for each task, keyed by task name, in the order given."""
    return {get_task(t).name: load_task(data_dir, t, split, strict=strict) for t in tasks}


def write_issues(issues: Iterable[DataIssue], path: str | Path) -> Path:
    """Write one ``file:line: reason`` per line to ``path`` (an empty file when there are none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{issue}\n" for issue in issues), encoding="utf-8")
    return path
