"""An endless, seeded, resumable stream of batches of one task.

:class:`TaskBatches` serves the batches of one task forever, reshuffled after every pass. It is a
pure function of (seed, batches served), so its ``state_dict`` is tiny and a restored stream
yields exactly the batches the original would have.
"""

from __future__ import annotations

import math

import numpy as np

from ..options import positive_int
from .batching import Batch, check_pair_encoding, collate
from .io import TaskData


class TaskBatches:
    """An endless, seeded, resumable stream of batches of one task.

    Each pass (epoch) visits every example exactly once, in an order drawn from (seed, epoch);
    the last batch of a pass may be smaller. With ``length_bucketing`` a pass is shuffled, then
    sorted by token length within windows of ``bucket_window`` batches, cut into batches, and the
    batch order shuffled, so each batch holds sentences of similar length and wastes little
    padding while the order stays random.
    """

    def __init__(self, data: TaskData, tokenizer, batch_size: int, *, seed: int = 0,
                 pair_encoding: str = "bi", max_length: int = 128,
                 length_bucketing: bool = False, bucket_window: int = 50):
        if not data.examples:
            raise ValueError(f"data: {data.path} has no examples")
        self.data, self.tokenizer = data, tokenizer
        self.batch_size = positive_int(batch_size, "batch_size")
        self.bucket_window = positive_int(bucket_window, "bucket_window")
        self.max_length = positive_int(max_length, "max_length")
        self.pair_encoding = check_pair_encoding(pair_encoding)
        self.length_bucketing, self.seed = bool(length_bucketing), int(seed)
        self.lengths = self.token_lengths() if self.length_bucketing else None
        self.served = 0  # batches yielded so far, over all passes
        self._order: tuple[int, list[np.ndarray]] | None = None  # (epoch, its batches)

    def __repr__(self) -> str:
        return (f"TaskBatches(task={self.data.task.name!r}, examples={len(self.data)}, "
                f"batch_size={self.batch_size}, seed={self.seed}, "
                f"pair_encoding={self.pair_encoding!r}, max_length={self.max_length}, "
                f"length_bucketing={self.length_bucketing}, bucket_window={self.bucket_window})")

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.data) / self.batch_size)

    @property
    def epoch(self) -> int:
        """Number of complete passes so far."""
        return self.served // self.batches_per_epoch

    @property
    def position(self) -> int:
        """Batches served in the current pass."""
        return self.served % self.batches_per_epoch

    def token_lengths(self) -> np.ndarray:
        """Tokens per example (both sentences of a pair), truncated as :func:`collate` would."""
        def count(texts: list[str]) -> np.ndarray:
            ids = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
            return np.array([len(x) for x in ids])

        lengths = count([e.text_a for e in self.data.examples])
        if self.data.task.kind == "pair":
            lengths += count([e.text_b for e in self.data.examples])
        return lengths

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """The example indices of each batch of pass ``epoch``, in serving order."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.data))
        if self.length_bucketing:
            window = self.bucket_window * self.batch_size
            order = np.concatenate([
                chunk[np.argsort(self.lengths[chunk], kind="stable")]
                for chunk in np.split(order, range(window, len(order), window))
            ])
        batches = np.split(order, range(self.batch_size, len(order), self.batch_size))
        if self.length_bucketing:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> TaskBatches:
        return self

    def __next__(self) -> Batch:
        epoch, position = divmod(self.served, self.batches_per_epoch)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, self.epoch_batches(epoch))
        self.served += 1
        examples = [self.data.examples[i] for i in self._order[1][position]]
        return collate(examples, self.data.task, self.tokenizer,
                       pair_encoding=self.pair_encoding, max_length=self.max_length)

    def config(self) -> dict:
        return {"task": self.data.task.name, "examples": len(self.data),
                "batch_size": self.batch_size, "length_bucketing": self.length_bucketing,
                "bucket_window": self.bucket_window, "max_length": self.max_length}

    def state_dict(self) -> dict:
        return {"config": self.config(), "seed": self.seed, "served": self.served}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where the saved stream stopped (its seed included)."""
        if state["config"] != self.config():
            raise ValueError(f"TaskBatches state was saved with {state['config']}, "
                             f"this stream has {self.config()}")
        self.seed, self.served, self._order = int(state["seed"]), int(state["served"]), None
