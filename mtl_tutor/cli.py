"""The ``mtl-tutor`` command: train, eval, predict, the demo, the leaderboard and the data."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields, replace
from pathlib import Path

from .data.location import locate_data
from .data_cli import add_data_parser
from .run_config import SMART_PLACEMENTS, TrainConfig

# The names and headers the CS224N starter code writes (evaluation.py's test_model_multitask,
# "Similiary" spelt as there; classifier.py's full-model CFIMDB files, not on the leaderboard).
PREDICTION_FILES = {
    "sst": ("sst-{split}-output.csv", "Predicted_Sentiment"),
    "quora": ("para-{split}-output.csv", "Predicted_Is_Paraphrase"),
    "sts": ("sts-{split}-output.csv", "Predicted_Similiary"),
    "cfimdb": ("full-model-cfimdb-{split}-out.csv", "Predicted_Sentiment"),
}


def parse_options(pairs: list[str], flag: str) -> dict:
    """``["k=v", ...]`` -> dict; values are read as JSON when they parse (numbers, true, lists)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: {flag} expects key=value, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def task_options(pairs: list[str], flag: str, depth: int) -> dict:
    """``["sts.hidden_layers=[768]"]`` -> ``{"sts": {"hidden_layers": [768]}}``: each key is
    ``depth`` dot-separated names; values as in :func:`parse_options`."""
    nested: dict = {}
    for pair in pairs:
        for key, value in parse_options([pair], flag).items():
            path = key.split(".")
            if len(path) != depth or not all(path):
                form = ".".join(["TASK", "NAME"][:depth - 1] + ["KEY"])
                raise SystemExit(f"error: {flag} expects {form}=VALUE, got {pair!r}")
            node = nested
            for name in path[:-1]:
                node = node.setdefault(name, {})
            node[path[-1]] = value
    return nested


def task_names(pairs: list[str], flag: str) -> list[tuple[str, str]]:
    """``["sts=cosine", ...]`` -> ``[("sts", "cosine"), ...]``."""
    named = []
    for pair in pairs:
        task, sep, name = pair.partition("=")
        if not sep or not task or not name:
            raise SystemExit(f"error: {flag} expects TASK=NAME, got {pair!r}")
        named.append((task, name))
    return named


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--backbone", default=d.backbone,
                   help="minilm-l6 (embedded), tiny, a checkpoint directory or a hub name")
    p.add_argument("--data", help="folder of task files (default: $MTL_TUTOR_DATA, else where "
                                  "mtl-tutor data download puts them)")
    p.add_argument("--out", help="run directory to create")
    p.add_argument("--resume", metavar="RUN",
                   help="continue the interrupted run in RUN exactly (other options are ignored)")
    p.add_argument("--tasks", default=",".join(d.tasks), help="comma-separated task names")
    p.add_argument("--combiner", default=d.combiner, help="combiner name (see COMBINER_NAMES)")
    p.add_argument("--combiner-opt", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--sampler", default=d.sampler)
    p.add_argument("--sampler-opt", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--pair-encoding", action="append", default=[], metavar="ENC|TASK=ENC",
                   help="bi or cross for every pair task, or TASK=bi|cross for one (repeatable)")
    p.add_argument("--head", action="append", default=[], metavar="TASK=NAME",
                   help="a task's head (mtl_tutor.heads.HEADS), e.g. sts=cosine")
    p.add_argument("--head-opt", action="append", default=[], metavar="TASK.KEY=VALUE",
                   help="a head option, e.g. sts.hidden_layers=[768] (over the default head "
                        "when --head does not name one)")
    p.add_argument("--loss", action="append", default=[], metavar="TASK=NAME",
                   help="a task's loss (mtl_tutor.losses.TASK_LOSSES), e.g. sts=huber")
    p.add_argument("--loss-opt", action="append", default=[], metavar="TASK.KEY=VALUE")
    p.add_argument("--aux-loss", action="append", default=[], metavar="TASK=NAME",
                   help="add an auxiliary loss (mnrl, triplet, smart, bregman), e.g. sts=mnrl")
    p.add_argument("--aux-loss-opt", action="append", default=[], metavar="TASK.NAME.KEY=VALUE",
                   help="e.g. sts.mnrl.weight=0.5 or sts.mnrl.positives=sts-embedding-cosine")
    p.add_argument("--smart-placement", default=d.smart_placement, choices=SMART_PLACEMENTS,
                   help="SMART's terms in each task's loss (task-loss) or their gradient added "
                        "after the combiner (after-combining)")
    p.add_argument("--pals", action="store_true", help="projected attention layers per task")
    p.add_argument("--pals-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="PAL option (implies --pals): size, num_heads, dropout, tasks=sst,sts")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--max-steps", type=int, default=None, help="stop after N steps (smoke runs)")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help="examples per task per step")
    p.add_argument("--max-length", type=int, default=d.max_length)
    p.add_argument("--no-length-bucketing", dest="length_bucketing", action="store_false",
                   help="shuffle batches without grouping sentences of similar length")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--head-lr", type=float, default=d.head_lr,
                   help="learning rate of the task heads")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--warmup-fraction", type=float, default=d.warmup_fraction)
    p.add_argument("--lr-schedule", default=d.lr_schedule, choices=("linear", "cosine"),
                   help="decay of the learning rate after the warm-up")
    p.add_argument("--freeze-backbone-steps", type=int, default=d.freeze_backbone_steps,
                   help="train only the heads (and PALs) for the first N steps")
    p.add_argument("--dropout-schedule", type=float, nargs=2, metavar=("START", "END"),
                   help="every dropout's p, linear from START to END over the epochs")
    p.add_argument("--head-dropout", type=float, default=None,
                   help="the task heads' dropout p for the whole run (the backbone's stays)")
    p.add_argument("--accumulation-steps", type=int, default=d.accumulation_steps,
                   help="micro-batches of --batch-size per task in one optimiser step")
    p.add_argument("--max-grad-norm", type=float, default=d.max_grad_norm)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--strict-data", action="store_true", help="a defective data row is an error")
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help="save the full training state every N steps (always after each eval)")
    p.add_argument("--device", default=d.device)
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in known}
    values["tasks"] = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    values["combiner_options"] = parse_options(args.combiner_opt, "--combiner-opt")
    values["sampler_options"] = parse_options(args.sampler_opt, "--sampler-opt")
    values["progress"] = not args.no_progress
    values["pair_encoding"], values["pair_encodings"] = TrainConfig.pair_encoding, {}
    for value in args.pair_encoding:
        task, sep, encoding = value.rpartition("=")
        if sep:
            values["pair_encodings"][task] = encoding
        else:
            values["pair_encoding"] = encoding
    head_options = task_options(args.head_opt, "--head-opt", 2)
    values["heads"] = {t: {"name": n} for t, n in task_names(args.head, "--head")}
    for task, options in head_options.items():
        values["heads"].setdefault(task, {}).update(options)
    values["losses"] = {t: {"name": n} for t, n in task_names(args.loss, "--loss")}
    for task, options in task_options(args.loss_opt, "--loss-opt", 2).items():
        values["losses"].setdefault(task, {}).update(options)
    values["aux_losses"] = {}
    for task, name in task_names(args.aux_loss, "--aux-loss"):
        values["aux_losses"].setdefault(task, {})[name] = {}
    for task, named in task_options(args.aux_loss_opt, "--aux-loss-opt", 3).items():
        for name, options in named.items():
            values["aux_losses"].setdefault(task, {}).setdefault(name, {}).update(options)
    values["pals"] = None
    if args.pals or args.pals_opt:
        values["pals"] = parse_options(args.pals_opt, "--pals-opt")
        if isinstance(values["pals"].get("tasks"), str):
            values["pals"]["tasks"] = values["pals"]["tasks"].split(",")
    return TrainConfig(**values)


def cmd_train(args) -> int:
    """Train in this process, or as one rank of ``torchrun --nproc_per_node N -m mtl_tutor.cli``."""
    from .distributed import init_from_env, leave
    from .train import TrainingInterrupted, resolve_device, train

    if args.resume:
        config, resume = TrainConfig.load(Path(args.resume) / "run_config.json"), True
    elif args.out:
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
    print(json.dumps(evaluate(model, loaders)))
    return 0


def prediction_text(task: str, value: float) -> str:
    """One prediction as the starter code writes it: a class index for SST and CFIMDB, 0.0 or
    1.0 for Quora, the score for STS."""
    if task == "quora":
        return str(float(value))
    return str(value) if task == "sts" else str(int(value))


def cmd_predict(args) -> int:
    from .checkpoint import load_run
    from .data import load_task
    from .evaluate import ordered_batches, predict_task

    model, tokenizer, config = load_run(args.run, args.device)
    data_dir = locate_data(args.data, config.tasks, (args.split,))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for task in config.tasks:
        data = load_task(data_dir, task, args.split, strict=args.strict_data)
        batches = (b.to(args.device) for b in ordered_batches(
            data, tokenizer, config.eval_batch_size, pair_encoding=config.encoding_of(task),
            max_length=config.max_length))
        ids, preds, _ = predict_task(model, batches)
        by_id = dict(zip(ids, preds.tolist()))
        name, header = PREDICTION_FILES[task]
        path = out / name.format(split=args.split)
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"id \t {header} \n")
            for example in data.examples:  # the input file's order
                value = by_id[example.id]
                f.write(f"{example.id} , {prediction_text(task, value)} \n")
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
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
