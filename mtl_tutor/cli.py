"""The ``mtl-tutor`` command: train, eval, predict, the demo, the leaderboard and the data.

Every failure ends in one line on stderr, ``error: ...``, naming the file, option or step
concerned, and an exit code by kind (:data:`EXIT_CODES`); ``--debug`` shows the traceback too.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
import traceback
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from .cli_arguments import add_arguments, flag_of, option_values, parse_options
from .damaged_files import DamagedFileError
from .data.io import DataFormatError
from .data.location import locate_data
from .data_cli import add_data_parser
from .divergence import TrainingDiverged
from .options import OptionError
from .run_config import TrainConfig, fixed_when_resumed
from .run_directory import RunDirectoryError

EXIT_CODES = """\
exit codes:
  0    done
  1    the work failed for the reason printed (a download or a data check, see
       `mtl-tutor data`), or an unexpected error (please report it; --debug shows where)
  2    the command line: an unknown flag, a bad option value (also in a run's
       run_config.json), or options that a run cannot combine
  3    a file or folder to read is missing, unreadable or damaged: data files, a
       backbone, a run's run_config.json, checkpoint.pt or model.safetensors
  4    a file or folder to write: --out already holds a run or is a file, or a
       permission or a full disk stopped the writing
  5    training diverged: a loss, gradient or output became NaN or infinite (the
       message says at which step and task, what was saved and what to try)
  130  interrupted (Ctrl-C or SIGTERM): a run that had started finished its step and
       saved it; `mtl-tutor train --resume RUN` continues it
"""

# The names and headers the CS224N starter code writes (evaluation.py's test_model_multitask,
# "Similiary" spelt as there; classifier.py's full-model CFIMDB files, not on the leaderboard).
PREDICTION_FILES = {
    "sst": ("sst-{split}-output.csv", "Predicted_Sentiment"),
    "quora": ("para-{split}-output.csv", "Predicted_Is_Paraphrase"),
    "sts": ("sts-{split}-output.csv", "Predicted_Similiary"),
    "cfimdb": ("full-model-cfimdb-{split}-out.csv", "Predicted_Sentiment"),
}


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``train``: one per TrainConfig field (mtl_tutor.cli_arguments), --recipe,
    --profile, --resume and --overwrite."""
    add_arguments(p, TrainConfig)
    p.add_argument("--recipe", metavar="FILE",
                   help="start from the settings of a recipe file (configs/*.toml); the other "
                        "flags override them")
    p.add_argument("--profile", metavar="NAME",
                   help="with --recipe: under budget profile NAME of the profiles.toml beside "
                        "the recipe (cpu, gpu)")
    p.add_argument("--resume", metavar="RUN",
                   help="continue the interrupted run in RUN exactly, wherever RUN is; only the "
                        "settings of how it runs may be given with it (--data, --device, "
                        "--eval-every, --checkpoint-every, --no-progress, ...)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier run in --out (without it, a new run refuses a "
                        "directory that is not empty)")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The run's config: the flags given, over a recipe (and its profile) when --recipe names
    one."""
    flags = option_values(args, TrainConfig)
    if getattr(args, "recipe", None):
        from .leaderboard.recipe_file import recipe_config

        return recipe_config(args.recipe, args.profile, flags)
    if getattr(args, "profile", None):
        raise ValueError("--profile: a profile sizes a recipe; give --recipe FILE too")
    return TrainConfig(**flags)


def new_run_config(args: argparse.Namespace) -> TrainConfig:
    """The config of a new run: the flags given, with the data folder located and local paths
    made absolute, so that the run can be continued from any directory."""
    if not hasattr(args, "out"):
        raise ValueError("train needs --out DIR for a new run, or --resume RUN to continue one")
    config = config_from_args(args)
    data = locate_data(config.data, config.tasks).absolute()
    backbone = Path(config.backbone).expanduser()
    return replace(config, data=str(data),
                   backbone=str(backbone.absolute()) if backbone.is_dir() else config.backbone)


def resumed_run_config(args: argparse.Namespace) -> TrainConfig:
    """The config of the run in ``--resume RUN``, continued in RUN itself (not where its
    run_config.json says it was made), with the settings of how it runs that flags change."""
    given = option_values(args, TrainConfig)
    fixed = [flag_of(TrainConfig, name) for name in fixed_when_resumed(given)]
    if fixed or args.overwrite:
        raise ValueError(f"--resume continues {args.resume} as its run_config.json says: "
                         f"{', '.join(fixed + ['--overwrite'] * args.overwrite)} cannot be "
                         "given with it; start a new run to change them")
    config = TrainConfig.of_run(args.resume, **given)
    return replace(config, data=str(locate_data(config.data, config.tasks)))


def cmd_train(args) -> int:
    """Train in this process, or as one rank of ``torchrun --nproc_per_node N -m mtl_tutor.cli``."""
    from .distributed import init_from_env, leave
    from .train import resolve_device, train

    config = resumed_run_config(args) if args.resume else new_run_config(args)
    rank, _ = init_from_env(resolve_device(config.device))
    try:
        summary = train(config, resume=bool(args.resume), overwrite=args.overwrite)
    finally:
        leave()
    if rank == 0:
        print(json.dumps({"run": summary["run"], "best": summary["best"],
                          "seconds": round(summary["seconds"], 1)}))
    return 0


@contextmanager
def outputs_of(run: str):
    """A model whose outputs are NaN or infinite was loaded from damaged weights: say so,
    naming the file."""
    from .evaluate import NonFiniteOutputs

    try:
        yield
    except NonFiniteOutputs as e:
        raise DamagedFileError(Path(run) / "model.safetensors", (
            f"its weights make the outputs for {e.rows} row(s) of task {e.task} NaN or "
            "infinite")) from e


def cmd_eval(args) -> int:
    from .checkpoint import load_run
    from .data import load_task
    from .evaluate import evaluate, ordered_batches
    from .train import resolve_device

    if args.split == "test":
        raise ValueError("the test split has no labels to score; evaluate --split dev, or write "
                         "test predictions with mtl-tutor predict --split test")
    device = resolve_device(args.device)
    model, tokenizer, config = load_run(args.run, device)
    data_dir = locate_data(args.data, config.tasks, (args.split,))
    loaders = {}
    for task in config.tasks:
        data = load_task(data_dir, task, args.split, strict=args.strict_data)
        loaders[task] = [b.to(device) for b in ordered_batches(
            data, tokenizer, config.eval_batch_size, pair_encoding=config.encoding_of(task),
            max_length=config.max_length)]
    with outputs_of(args.run):
        print(json.dumps(evaluate(model, loaders)))
    return 0


def prediction_text(task: str, value: float) -> str:
    """One prediction as the starter code writes it: a class index for SST and CFIMDB, 0.0 or
    1.0 for Quora, the score for STS."""
    if task == "quora":
        return str(float(value))
    return str(value) if task == "sts" else str(int(value))


def cmd_predict(args) -> int:
    """One prediction per row of each task's file, in the file's order (rows that share an id
    each get their own)."""
    from .checkpoint import atomic_write_text, load_run
    from .data import load_task
    from .evaluate import predict_rows
    from .train import resolve_device

    device = resolve_device(args.device)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise RunDirectoryError(f"--out {out} is a file; predictions need a directory")
    model, tokenizer, config = load_run(args.run, device)
    data_dir = locate_data(args.data, config.tasks, (args.split,))
    for task in config.tasks:
        data = load_task(data_dir, task, args.split, strict=args.strict_data)
        with outputs_of(args.run):
            predictions = predict_rows(model, data, tokenizer, config.eval_batch_size,
                                       pair_encoding=config.encoding_of(task),
                                       max_length=config.max_length, device=device)
        name, header = PREDICTION_FILES[task]
        path = out / name.format(split=args.split)
        atomic_write_text(path, f"id \t {header} \n" + "".join(
            f"{example.id} , {prediction_text(task, value)} \n"
            for example, value in zip(data.examples, predictions.tolist())))
        print(f"wrote {path} ({len(data.examples)} rows)")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(Path(args.out), seed=args.seed)
    return 0


def cmd_leaderboard(args) -> int:
    from .leaderboard import build_report, load_board, run_leaderboard
    from .train import TrainingInterrupted

    board = load_board(args.profile, args.configs, args.data or "", args.profiles, args.claims,
                       args.baseline, args.out, args.results,
                       parse_options(args.set, "--set"), check=not args.report_only)
    if args.report_only:
        report = build_report(board, args.data, args.results, args.bench)
    else:
        only = [n for part in args.only for n in part.split(",") if n]
        seeds = [int(s) for part in args.seeds for s in part.split(",") if s]
        command = shlex.join(["mtl-tutor", *sys.argv[1:]])
        try:
            report = run_leaderboard(board, args.data, only, seeds, command, args.plan,
                                     args.bench, args.results)
        except TrainingInterrupted as e:
            print(f"interrupted: {e}; run the same command again to go on", file=sys.stderr)
            return 130
    if report is not None:
        written = report.write(Path(args.results) / args.profile)
        print(report.header.split("\n\n")[-1])
        print("wrote " + ", ".join(str(p) for p in written))
    return 0


DEBUG = argparse.ArgumentParser(add_help=False)
DEBUG.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="on an error, print the traceback before the one-line message")
COMMAND = {"parents": [DEBUG], "epilog": EXIT_CODES,
           "formatter_class": argparse.RawDescriptionHelpFormatter}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtl-tutor", description=__doc__.split("\n")[0],
                                     epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", default=False,
                        help="on an error, print the traceback before the one-line message")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a multitask model", **COMMAND)
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)
    for name, func, help_ in (("eval", cmd_eval, "print a run's metrics as one JSON object"),
                              ("predict", cmd_predict, "write CS224N-format prediction files")):
        p = sub.add_parser(name, help=help_, **COMMAND)
        p.add_argument("--run", required=True, help="run directory written by train")
        p.add_argument("--data", help="folder of task files (default: as for train)")
        p.add_argument("--split", default="dev")
        p.add_argument("--device", default="cpu")
        p.add_argument("--strict-data", action="store_true")
        if name == "predict":
            p.add_argument("--out", required=True, help="directory for the prediction files")
        p.set_defaults(func=func)
    p = sub.add_parser("demo", help="train MiniLM-L6 with PCGrad on the synthetic corpus",
                       **COMMAND)
    p.add_argument("--out", default="runs/demo",
                   help="folder of the demo's corpus (OUT/data) and run (OUT/run, replacing an "
                        "earlier demo's run) [default: %(default)s]")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("leaderboard", help="run the recipes under a budget profile, keep a "
                                           "record per run, compare them with the baseline "
                                           "and test the reports' claims", **COMMAND)
    p.add_argument("--profile", default="cpu", help="budget profile (profiles.toml) [cpu]")
    p.add_argument("--configs", nargs="+", default=["configs"],
                   help="recipe files, or directories of *.toml files [configs]")
    p.add_argument("--profiles", help="profiles file [profiles.toml beside the recipes]")
    p.add_argument("--claims", help="claims file [claims.toml beside the recipes]")
    p.add_argument("--baseline", default="baseline_sum",
                   help="the recipe every other is compared with [baseline_sum]")
    p.add_argument("--data", help="folder of task files (default: as for train)")
    p.add_argument("--results", default="results/leaderboard",
                   help="records and report, under PROFILE/ [results/leaderboard]")
    p.add_argument("--out", default="runs/leaderboard",
                   help="where runs train, under PROFILE/ (scratch) [runs/leaderboard]")
    p.add_argument("--bench", default="results/bench",
                   help="bench results the claims and --plan read [results/bench]")
    p.add_argument("--only", action="append", default=[], metavar="NAME[,NAME]",
                   help="runs to train: recipe names, recipe file names, 'claims' (the "
                        "baseline and the claims' recipes) or 'others' (repeatable)")
    p.add_argument("--seeds", action="append", default=[], metavar="S[,S]",
                   help="train only these of the profile's seeds (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a TrainConfig field for every run, e.g. backbone=tiny (repeatable)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--plan", action="store_true",
                      help="list the selected runs, recorded or not, with the expected minutes")
    mode.add_argument("--report-only", action="store_true",
                      help="rebuild the tables and the plot from the records; train nothing")
    p.set_defaults(func=cmd_leaderboard)
    add_data_parser(sub, parents=[DEBUG])
    return parser


def exit_code(error: BaseException) -> int:
    """The documented exit code of ``error`` (see :data:`EXIT_CODES`)."""
    for kinds, code in (((KeyboardInterrupt,), 130), ((TrainingDiverged,), 5),
                        ((RunDirectoryError,), 4),
                        ((DamagedFileError, DataFormatError, FileNotFoundError), 3),
                        ((ValueError,), 2), ((OSError,), 4)):
        if isinstance(error, kinds):
            return code
    return 1


def error_line(error: BaseException, args: argparse.Namespace) -> str:
    """The one line that reports ``error``."""
    if isinstance(error, OptionError):  # a flag's value: name the flag too
        flag = flag_of(TrainConfig, error.option) if args.command == "train" or \
            error.option == "device" else None
        text = f"{flag}: {error}" if flag else str(error)
    elif isinstance(error, KeyboardInterrupt):
        text = f"interrupted: {error}" if str(error) else "interrupted"
        if args.command == "train" and not str(error):  # before the trainer's signal handling
            text += " before training started; " + (f"{args.resume} is as it was" if args.resume
                                                     else "nothing was written")
    elif isinstance(error, OSError) and not isinstance(error, RunDirectoryError) \
            and error.filename and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    elif exit_code(error) == 1:
        text = (f"unexpected {type(error).__name__}: {error} (a bug in mtl-tutor? --debug "
                "shows where)")
    else:
        text = str(error)
    return "error: " + " ".join(text.split())


@contextmanager
def sigterm_interrupts():
    """SIGTERM interrupts like Ctrl-C while the command runs (the trainer then saves and stops
    after its step, as on SIGINT)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with sigterm_interrupts():
            return args.func(args)
    except SystemExit as e:  # the flag parsers' "error: ..." messages
        if not isinstance(e.code, str):
            raise
        print(e.code, file=sys.stderr)
        return 2
    except (Exception, KeyboardInterrupt) as e:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(error_line(e, args), file=sys.stderr)
        return exit_code(e)


if __name__ == "__main__":
    sys.exit(main())
