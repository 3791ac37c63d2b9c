"""What the training loop does around its steps, as hooks: the log, the combiner's epoch means,
the progress bar, evaluation, checkpoints, and stopping on a signal.

A hook is an object with ``on_step(record)``, called after every step with its
:class:`~mtl_tutor.run_log.StepRecord`, and optionally ``on_eval(record)`` (each
:class:`~mtl_tutor.run_log.EvalRecord`) and ``close()``; the user's callbacks are hooks of the
same kind. The trainer calls them in order: :class:`Logging`, the callbacks, :class:`ProgressBar`,
:class:`EpochMeans`, :class:`Evaluation`, :class:`Checkpoints`. Under ``torchrun`` the processes
other than rank 0 keep only :class:`EpochMeans`, so that every combiner sees the same events.

:class:`Progress` is what the loop has learnt so far (the best evaluation, the history, the time
spent, the current epoch's losses); it goes into every checkpoint with the whole training state
(:func:`training_state`), so that a resumed run continues exactly.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .checkpoint import save_model, save_training_state
from .combiners import EpochEnd
from .damaged_files import DamagedFileError, non_finite_tensors
from .divergence import NonFiniteStep
from .evaluate import NonFiniteOutputs, evaluate
from .run_config import TrainConfig
from .run_directory import TRAINING_STATE
from .run_log import EvalRecord, RunLog, StepRecord
from .training_run import Run


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; the state after the last finished step is in checkpoint.pt."""


class StopSignals:
    """While active, SIGINT/SIGTERM only set ``requested``; the loop stops after its step."""

    def __init__(self):
        self.requested: str | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@dataclass
class Progress:
    """What the loop has learnt so far. The first five fields go into every checkpoint (the
    seconds as :meth:`elapsed` says them then); the others belong to this session of the run:
    ``first_step`` (where it started), ``last_checkpoint`` (the steps in the newest
    checkpoint.pt, None before the first) and ``started`` (the clock's origin, earlier sessions'
    seconds before this one's start)."""

    best: dict | None = None
    best_score: float = -math.inf
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    epoch_losses: dict[str, list[float]] = field(default_factory=dict)
    first_step: int = 0
    last_checkpoint: int | None = None
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.started -= self.seconds  # the clock goes on from the time already spent

    @classmethod
    def new(cls, tasks: tuple[str, ...]) -> Progress:
        return cls(epoch_losses={t: [] for t in tasks})

    @classmethod
    def resumed(cls, saved: dict, step: int) -> Progress:
        return cls(**saved, first_step=step, last_checkpoint=step)

    def elapsed(self) -> float:
        """Seconds of training so far, over every session of the run."""
        return time.perf_counter() - self.started

    def to_dict(self) -> dict:
        return {"best": self.best, "best_score": self.best_score, "history": self.history,
                "seconds": self.elapsed(), "epoch_losses": self.epoch_losses}


class Logging:
    """Every record into ``RUN/log.jsonl`` and ``RUN/eval.jsonl``."""

    def __init__(self, log: RunLog):
        self.log = log

    def on_step(self, record: StepRecord) -> None:
        self.log.write_step(record)

    def on_eval(self, record: EvalRecord) -> None:
        self.log.write_eval(record)

    def close(self) -> None:
        self.log.close()


class ProgressBar:
    """A progress bar with the step's losses, and a line per evaluation."""

    def __init__(self, run: Run, first_step: int):
        self.bar = tqdm(total=run.total_steps, initial=first_step,
                        desc=f"train {run.config.combiner}", disable=not run.config.progress)

    def on_step(self, record: StepRecord) -> None:
        self.bar.update()
        self.bar.set_postfix({t: f"{v:.3f}" for t, v in record.losses.items()}, refresh=False)

    def on_eval(self, record: EvalRecord) -> None:
        self.bar.write(f"epoch {record.epoch} step {record.step}: " + ", ".join(
            f"{k} {v:.3f}" for k, v in record.metrics.items()))

    def close(self) -> None:
        self.bar.close()


class EpochMeans:
    """Each task's mean training loss over an epoch, sent to the combiner as
    :class:`~mtl_tutor.combiners.EpochEnd` when the epoch ends (DWA weighs by them)."""

    def __init__(self, run: Run, progress: Progress):
        self.run, self.progress = run, progress

    def on_step(self, record: StepRecord) -> None:
        for task, loss in record.losses.items():
            self.progress.epoch_losses[task].append(loss)
        if self.run.ends_epoch(record.step):
            means = {t: sum(v) / len(v) for t, v in self.progress.epoch_losses.items() if v}
            self.run.combiner.on_event(EpochEnd(record.epoch, means))
            self.progress.epoch_losses = {t: [] for t in self.run.config.tasks}


class Evaluation:
    """The dev metrics after every epoch and every ``eval_every`` steps, handed to every
    ``listeners`` (the hooks' ``on_eval``); the best model by the overall score is saved as
    ``RUN/model.safetensors``. Both use the weights' moving average where the run keeps one
    (``ema_decay``). Dev-set outputs that are not finite stop the run."""

    def __init__(self, run: Run, progress: Progress, log: RunLog, listeners: list):
        self.run, self.progress, self.log, self.listeners = run, progress, log, listeners

    def on_step(self, record: StepRecord) -> None:
        if not self.run.evaluates_after(record.step):
            return
        self.log.flush()
        with self.run.evaluated_weights():
            try:
                metrics = evaluate(self.run.model, self.run.dev_loaders)
            except NonFiniteOutputs as e:
                raise NonFiniteStep(record.step, e.task, "an output on the dev set",
                                    updated=True) from e
            result = EvalRecord(record.step + 1, record.epoch + 1, metrics)
            self.progress.history.append(result.to_dict())
            if result.score > self.progress.best_score:
                self.progress.best, self.progress.best_score = result.to_dict(), result.score
                save_model(self.run.run_dir, self.run.model)
        for listener in self.listeners:
            listener(result)


class Checkpoints:
    """The whole training state, atomically into ``RUN/checkpoint.pt``: after every evaluation,
    every ``checkpoint_every`` steps, after the last step and when a stop signal arrived. A
    model with a NaN or infinite weight is never saved: it stops the run instead."""

    def __init__(self, run: Run, progress: Progress, log: RunLog, stop: StopSignals):
        self.run, self.progress, self.log, self.stop = run, progress, log, stop

    def on_step(self, record: StepRecord) -> None:
        step, every = record.step, self.run.config.checkpoint_every
        periodic = bool(every and (step + 1) % every == 0)
        last = step + 1 == self.run.total_steps
        if self.run.evaluates_after(step) or periodic or last or self.stop.requested:
            self.log.flush()
            state = training_state(self.run, step + 1, self.progress.to_dict())
            if non_finite_tensors(state["model"]):  # never saved as a state to continue from
                raise NonFiniteStep(step, "/".join(record.tasks), "a weight after the update",
                                    updated=True)
            save_training_state(self.run.run_dir, state)
            self.progress.last_checkpoint = step + 1


class Hooks:
    """The loop's hooks in order (see the module docstring); :meth:`close` closes the trainer's
    own (the log files, the progress bar), never a callback."""

    def __init__(self, run: Run, progress: Progress, log: RunLog | None, stop: StopSignals,
                 callbacks=()):
        means = EpochMeans(run, progress)
        if not run.processes.main:
            self.own = self.order = [means]
        else:
            logging, bar = Logging(log), ProgressBar(run, progress.first_step)
            listening = [logging, *callbacks, bar]
            evaluation = Evaluation(run, progress, log, [hook.on_eval for hook in listening
                                                         if hasattr(hook, "on_eval")])
            checkpoints = Checkpoints(run, progress, log, stop)
            self.own = [logging, bar, means, evaluation, checkpoints]
            self.order = [*listening, means, evaluation, checkpoints]
        self.steps = [hook.on_step for hook in self.order if hasattr(hook, "on_step")]

    def on_step(self, record: StepRecord) -> None:
        for on_step in self.steps:
            on_step(record)

    def close(self) -> None:
        for hook in self.own:
            if hasattr(hook, "close"):
                hook.close()


def training_state(run: Run, step: int, progress: dict) -> dict:
    """Everything that determines the rest of the run after ``step`` finished steps."""
    return {
        "step": step,
        "config": run.config.to_dict(),
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "schedule": run.schedule.state_dict(),
        "combiner": run.combiner.state_dict(),
        "sampler": run.sampler.state_dict(),
        "streams": {t: s.state_dict() for t, s in run.streams.items()},
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "progress": progress,
        **({} if run.weight_average is None
           else {"weight_average": run.weight_average.state_dict()}),
    }


def restore(run: Run, state: dict) -> dict:
    """Put ``state`` (:func:`training_state`, read from RUN/checkpoint.pt) back into ``run``;
    return its progress. A state that does not fit the run is a DamagedFileError."""
    try:
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.schedule.load_state_dict(state["schedule"])
        run.combiner.load_state_dict(state["combiner"])
        run.sampler.load_state_dict(state["sampler"])
        for t, s in run.streams.items():
            s.load_state_dict(state["streams"][t])
        if run.weight_average is not None:
            run.weight_average.load_state_dict(state["weight_average"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
    except (KeyError, RuntimeError, TypeError, ValueError) as e:
        raise DamagedFileError(run.run_dir / TRAINING_STATE, "it does not hold this run's "
                               f"state ({str(e).splitlines()[0] if str(e) else repr(e)})") from e
    return state["progress"]


def check_resumable(config: TrainConfig, state: dict, run_dir: Path) -> None:
    """Refuse to resume when run_config.json no longer describes the run the checkpoint holds
    (checkpoints written before configs were saved in them are not checked)."""
    if "config" not in state:
        return
    changed = config.method_differences(TrainConfig.from_dict(state["config"]))
    if changed:
        raise ValueError(
            f"{run_dir / 'run_config.json'} no longer matches the checkpoint it would resume: "
            + "; ".join(f"{name} is {now!r} there but {before!r} in the checkpoint"
                        for name, now, before in changed)
            + ". Restore those settings, or start a new run.")
