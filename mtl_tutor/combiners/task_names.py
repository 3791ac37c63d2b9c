"""Which task each row of ``G`` belongs to, and the one order in which a combiner sees its tasks.

A combiner's state belongs to task names, never to row positions. Every call names ``G``'s rows
(``tasks``); without names, row k is the k-th of the combiner's declared tasks, or, for a
combiner that declared none, the task ``"k"``. Inside, a combiner works in its *canonical
order*: its declared tasks' order, or sorted names when it declared none. Random draws and
solvers therefore see the same tasks in the same order whatever order the rows arrive in, so
permuting ``G``'s rows together with their names permutes nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence


def checked_names(tasks: Sequence[str], what: str = "tasks") -> tuple[str, ...]:
    """``tasks`` as a tuple of distinct, non-empty names without '/' (which joins pair names)."""
    if isinstance(tasks, str):
        raise ValueError(f"{what} must be a sequence of task names, got the string {tasks!r}")
    names = tuple(tasks)
    for name in names:
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"{what} must be non-empty strings without '/', got {name!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} must be distinct, got {list(names)}")
    return names


def row_names(K: int, tasks: Sequence[str] | None,
              declared: tuple[str, ...] | None) -> tuple[str, ...]:
    """The task name of each of ``K`` rows (see the module docstring)."""
    if tasks is None:
        if declared is None:
            return tuple(str(k) for k in range(K))
        if len(declared) != K:
            raise ValueError(f"G has {K} rows but the combiner's tasks are {list(declared)}; "
                             "name the rows with tasks=[...]")
        return declared
    names = checked_names(tasks)
    if len(names) != K:
        raise ValueError(f"tasks must name each of G's {K} rows, got {list(names)}")
    if declared is not None:
        unknown = [name for name in names if name not in declared]
        if unknown:
            raise ValueError(f"tasks {unknown} are not among the combiner's tasks "
                             f"{list(declared)}")
    return names


def canonical_order(names: tuple[str, ...], declared: tuple[str, ...] | None) -> list[int]:
    """Row indices of ``names`` in the canonical order: declared order, else sorted names."""
    if declared is None:
        return sorted(range(len(names)), key=names.__getitem__)
    position = {name: i for i, name in enumerate(declared)}
    return sorted(range(len(names)), key=lambda row: position[names[row]])
