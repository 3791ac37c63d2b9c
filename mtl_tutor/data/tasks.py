"""The four CS224N tasks: what each file holds and how each task is scored.

The CS224N minBERT default final project (Stanford, winter 2023/24) trains one BERT on three
tasks at once (:data:`MULTITASK`): 5-class sentiment on the Stanford Sentiment Treebank (SST),
paraphrase detection on Quora Question Pairs and semantic textual similarity on the SemEval STS
Benchmark. CFIMDB (binary movie-review sentiment) is the project's warm-up task.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    """One task: its input shape, its label and its metric.

    name: file prefix, ``{name}-{split}.csv``.
    kind: "single" (one sentence) or "pair" (two sentences).
    label: "class" (integer 0..num_labels-1), "binary" (0 or 1, a float target) or "score"
      (a float in ``label_range``).
    num_labels: number of classes for "class" labels, None otherwise.
    label_range: smallest and largest valid label.
    metric: "accuracy" or "pearson".
    columns: the header after the unnamed index column, label last.
    public_name: the prefix of the public release's file names (``ids-sst`` in
      ``ids-sst-train.csv``); its unlabelled test inputs are ``{public_name}-test-student.csv``.
    """

    name: str
    kind: str
    label: str
    num_labels: int | None
    label_range: tuple[float, float]
    metric: str
    columns: tuple[str, ...]
    public_name: str

    def file_names(self, split: str) -> tuple[str, ...]:
        """The names a file of ``split`` may have in a data directory: ``{name}-{split}.csv``,
        then the public release's name (``ids-sst-dev.csv``, ``sts-test-student.csv``)."""
        public_split = "test-student" if split == "test" else split
        return tuple(dict.fromkeys((f"{self.name}-{split}.csv",
                                    f"{self.public_name}-{public_split}.csv")))

    def split_of(self, file_name: str) -> str | None:
        """The split of a file named as :meth:`file_names` names them (``ids-sst-dev.csv``:
        "dev", ``sts-test-student.csv``: "test"), or None for another name."""
        stem = file_name.removesuffix(".csv")
        for prefix in (f"{self.public_name}-", f"{self.name}-"):
            if stem.startswith(prefix) and len(stem) > len(prefix):
                split = stem.removeprefix(prefix)
                return "test" if split == "test-student" else split
        return None

    @property
    def text_columns(self) -> tuple[str, ...]:
        """The sentence columns: one for "single" tasks, two for "pair" tasks."""
        return self.columns[1:-1]

    @property
    def label_column(self) -> str:
        return self.columns[-1]


TASKS: dict[str, TaskSpec] = {
    "sst": TaskSpec("sst", "single", "class", 5, (0, 4), "accuracy",
                    ("id", "sentence", "sentiment"), "ids-sst"),
    "quora": TaskSpec("quora", "pair", "binary", None, (0, 1), "accuracy",
                      ("id", "sentence1", "sentence2", "is_duplicate"), "quora"),
    "sts": TaskSpec("sts", "pair", "score", None, (0, 5), "pearson",
                    ("id", "sentence1", "sentence2", "similarity"), "sts"),
    "cfimdb": TaskSpec("cfimdb", "single", "class", 2, (0, 1), "accuracy",
                       ("id", "sentence", "sentiment"), "ids-cfimdb"),
}

MULTITASK: tuple[str, ...] = ("sst", "quora", "sts")


def get_task(name: str | TaskSpec) -> TaskSpec:
    """The :class:`TaskSpec` called ``name`` (a TaskSpec is returned unchanged)."""
    if isinstance(name, TaskSpec):
        return name
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name]
