"""The ``mtl-tutor`` command: train, eval, predict, the demo, the leaderboard and the data."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from .cli_arguments import add_arguments, flag_of, option_values, parse_options
from .damaged_files import DamagedFileError
from .data.location import locate_data
from .data_cli import add_data_parser
from .options import OptionError
from .run_config import TrainConfig

# The names and headers the CS224N starter code writes (evaluation.py's test_model_multitask,
# "Similiary" spelt as there; classifier.py's full-model CFIMDB files, not on the leaderboard).
PREDICTION_FILES = {
    "sst": ("sst-{split}-output.csv", "Predicted_Sentiment"),
    "quora": ("para-{split}-output.csv", "Predicted_Is_Paraphrase"),
    "sts": ("sts-{split}-output.csv", "Predicted_Similiary"),
    "cfimdb": ("full-model-cfimdb-{split}-out.csv", "Predicted_Sentiment"),
}


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``train``: one per TrainConfig field (mtl_tutor.cli_arguments), and --resume."""
    add_arguments(p, TrainConfig)
    p.add_argument("--resume", metavar="RUN",
                   help="continue the interrupted run in RUN exactly (other options are ignored)")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**option_values(args, TrainConfig))


def cmd_train(args) -> int:
    """Train in this process, or as one rank of ``torchrun --nproc_per_node N -m mtl_tutor.cli``."""
    from .distributed import init_from_env, leave
    from .train import TrainingInterrupted, resolve_device, train

    if args.resume:
        config, resume = TrainConfig.load(Path(args.resume) / "run_config.json"), True
    elif getattr(args, "out", None):
        config = config_from_args(args)
        config, resume = replace(config, data=str(locate_data(config.data, config.tasks))), False
    else:
        raise SystemExit("error: train needs --out (or --resume RUN)")
    rank, _ = init_from_env(resolve_device(config.device))
    try:
        summary = train(config, resume=resume)
    except TrainingInterrupted as e:
        print(f"interrupted: {e}", file=sys.stderr)
        return 130
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

    if args.split == "test":
        raise ValueError("the test split has no labels to score; evaluate --split dev, or write "
                         "test predictions with mtl-tutor predict --split test")
    model, tokenizer, config = load_run(args.run, args.device)
    data_dir = locate_data(args.data, config.tasks, (args.split,))
    loaders = {}
    for task in config.tasks:
        data = load_task(data_dir, task, args.split, strict=args.strict_data)
        loaders[task] = [b.to(args.device) for b in ordered_batches(
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

    out = Path(args.out)
    model, tokenizer, config = load_run(args.run, args.device)
    data_dir = locate_data(args.data, config.tasks, (args.split,))
    for task in config.tasks:
        data = load_task(data_dir, task, args.split, strict=args.strict_data)
        with outputs_of(args.run):
            predictions = predict_rows(model, data, tokenizer, config.eval_batch_size,
                                       pair_encoding=config.encoding_of(task),
                                       max_length=config.max_length, device=args.device)
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
    from .leaderboard import run_leaderboard
    from .train import TrainingInterrupted

    try:
        run_leaderboard(args.configs, locate_data(args.data), args.out,
                        parse_options(args.set, "--set"))
    except TrainingInterrupted as e:
        print(f"interrupted: {e}; run the same command again to go on", file=sys.stderr)
        return 130
    print(f"wrote {Path(args.out) / 'leaderboard.md'}, leaderboard.csv and leaderboard.html")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtl-tutor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a multitask model")
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)
    for name, func, help_ in (("eval", cmd_eval, "print a run's metrics as one JSON object"),
                              ("predict", cmd_predict, "write CS224N-format prediction files")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--run", required=True, help="run directory written by train")
        p.add_argument("--data", help="folder of task files (default: as for train)")
        p.add_argument("--split", default="dev")
        p.add_argument("--device", default="cpu")
        p.add_argument("--strict-data", action="store_true")
        if name == "predict":
            p.add_argument("--out", required=True, help="directory for the prediction files")
        p.set_defaults(func=func)
    p = sub.add_parser("demo", help="train MiniLM-L6 with PCGrad on the synthetic corpus")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("leaderboard", help="run the recipes of TOML files over seeds; compare")
    p.add_argument("--configs", nargs="+", default=["configs"],
                   help="recipe files, or directories of *.toml files")
    p.add_argument("--data", help="folder of task files (default: as for train)")
    p.add_argument("--out", default="runs/leaderboard", help="runs and leaderboard files")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a TrainConfig field for every run, e.g. backbone=tiny (repeatable)")
    p.set_defaults(func=cmd_leaderboard)
    add_data_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except OptionError as e:  # a train flag's value: name the flag too
        flag = None if getattr(args, "resume", True) else flag_of(TrainConfig, e.option)
        print(f"error: {flag}: {e}" if flag else f"error: {e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
