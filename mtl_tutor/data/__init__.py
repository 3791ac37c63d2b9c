"""Task data: the CS224N tasks, their files and where they are, the public release and its
download, a synthetic corpus, batches and task samplers."""

from .batching import PAIR_ENCODINGS, Batch, collate
from .io import (
    DataFormatError,
    DataIssue,
    DataWarning,
    Example,
    TaskData,
    load_task,
    load_tasks,
    read_task_file,
    task_file,
    write_issues,
)
from .location import DATA_ENV, DataNotFoundError, data_home, locate_data
from .sampling import SAMPLER_NAMES, Sampler, get_sampler
from .synthetic import write_synthetic_corpus
from .task_batches import TaskBatches
from .tasks import MULTITASK, TASKS, TaskSpec, get_task

__all__ = [
    "DATA_ENV", "MULTITASK", "PAIR_ENCODINGS", "SAMPLER_NAMES", "TASKS",
    "Batch", "DataFormatError", "DataIssue", "DataNotFoundError", "DataWarning", "Example",
    "Sampler", "TaskBatches", "TaskData", "TaskSpec",
    "collate", "data_home", "get_sampler", "get_task", "load_task", "load_tasks", "locate_data",
    "read_task_file", "task_file", "write_issues", "write_synthetic_corpus",
]
