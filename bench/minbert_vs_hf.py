"""minBERT against ``transformers.BertModel``: time and memory of one multi-task training step.

One step is what the trainer does for the ``sum`` combiner's inputs: forward and backward a
batch of SST sentences, a batch of Quora pairs and a batch of STS pairs (real CS224N rows,
tokenised with the MiniLM tokenizer, padded to each batch's longest sequence, at most
--max-length tokens; pairs encoded as the trainer does, --pair-encoding). Every model holds the
same MiniLM weights and runs in training mode (dropout on). The models take turns within each
repetition, in a rotating order, after warm-up repetitions, so a machine that speeds up or
slows down affects them alike; the table shows medians and the ratio hf_time / ours_time.

Columns: step ms (median), hf/this, saved activations (MiB kept for the backward pass,
measured once with saved-tensor hooks), tokens/s (real, non-padding tokens). On CUDA also the
peak memory of a step above what was allocated before it, and model FLOPs utilisation:
matmul FLOPs of the real tokens (3x forward for forward + backward) / time / --peak-tflops.

    python bench/minbert_vs_hf.py                  # CPU, 2 threads, 10 repetitions
    python bench/minbert_vs_hf.py --quick          # smoke run
    python bench/minbert_vs_hf.py --device cuda --bf16
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import transformers

from mtl_tutor import load_backbone
from mtl_tutor.bert.load import embedded_minilm_dir
from mtl_tutor.bert.speed import bf16_autocast, compile_backbone
from mtl_tutor.data.io import DataWarning, load_task

DATA = Path(__file__).resolve().parents[1].parent / "shared/data/cs224n"
TASKS = ("sst", "quora", "sts")
VARIANTS = ("hf", "padded", "unpadded", "compiled")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--pair-encoding", choices=("bi", "cross"), default="bi")
    p.add_argument("--reps", type=int, default=10, help="timed repetitions (median reported)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="3 repetitions, 1 warm-up")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast around the forward")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"comma-separated subset of {','.join(VARIANTS)}")
    p.add_argument("--peak-tflops", type=float, default=989.0,
                   help="device peak for MFU (H100/H200 SXM dense bf16: 989)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.quick:
        args.reps, args.warmup = 3, 1
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown or "hf" not in args.variants.split(","):
        p.error(f"--variants must include hf and name only {VARIANTS}; got {args.variants}")
    return args


def task_batches(args, tokenizer, n_steps: int) -> list[list[dict[str, torch.Tensor]]]:
    """n_steps steps, each a list of one tokenised batch per task, as the trainer feeds BERT."""
    rng = random.Random(args.seed)
    per_task = {}
    for task in TASKS:
        with warnings.catch_warnings():  # a few defective rows are skipped: fine for timing
            warnings.simplefilter("ignore", DataWarning)
            examples = load_task(args.data, task, "train").examples
        chosen = rng.sample(examples, n_steps * args.batch_size)
        per_task[task] = [chosen[i * args.batch_size:(i + 1) * args.batch_size]
                          for i in range(n_steps)]

    def encode(*texts):
        return dict(tokenizer(*texts, padding="longest", truncation=True,
                              max_length=args.max_length, return_tensors="pt"))

    steps = []
    for i in range(n_steps):
        step = []
        for task in TASKS:
            a = [e.text_a for e in per_task[task][i]]
            b = [e.text_b for e in per_task[task][i]]
            if task == "sst":
                enc = encode(a)
            elif args.pair_encoding == "cross":
                enc = encode(a, b)
            else:  # both sides in one BERT pass, padded to the longer one (mtl_tutor.model)
                enc = encode(a + b)
            if task == "sst" or args.pair_encoding == "bi":
                del enc["token_type_ids"]  # one segment: the trainer passes none
            step.append({k: v.to(args.device) for k, v in enc.items()})
        steps.append(step)
    return steps


def build_models(args) -> dict[str, torch.nn.Module]:
    models = {}
    for name in args.variants.split(","):
        if name == "hf":
            model = transformers.BertModel.from_pretrained(embedded_minilm_dir(),
                                                           attn_implementation="sdpa")
        else:
            model = load_backbone("minilm-l6")[0]
            model.use_attention("padded" if name == "padded" else "unpadded")
            if name == "compiled":
                compile_backbone(model)
        models[name] = model.to(args.device).train()
    return models


def outputs(out) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(out, dict):
        return out["last_hidden_state"], out["pooler_output"]
    return out.last_hidden_state, out.pooler_output


def train_step(model: torch.nn.Module, step: list[dict], autocast) -> None:
    """Forward and backward each task's batch; a loss that reaches every parameter."""
    for batch in step:
        with autocast():
            hidden, pooled = outputs(model(**batch))
            mask = batch["attention_mask"][..., None]
            loss = (hidden.float().square() * mask).sum() / mask.sum() + pooled.float().mean()
        loss.backward()
    model.zero_grad(set_to_none=True)


def saved_activation_mib(run: Callable[[], None]) -> float:
    """MiB of distinct tensors autograd keeps for the backward pass during ``run``."""
    seen: dict[tuple, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[(storage.data_ptr(), t.device)] = storage.nbytes()
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            run()
    except RuntimeError:  # compiled graphs may refuse hooks
        return float("nan")
    return sum(seen.values()) / 2**20


def train_flops(step: list[dict], config) -> float:
    """Matmul FLOPs of forward + backward (3x forward) over the real tokens of a step."""
    C, inner, n_layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    flops = 0.0
    for batch in step:
        for L in batch["attention_mask"].sum(1).tolist():
            per_layer = 2 * L * (4 * C * C + 2 * C * inner) + 2 * 2 * L * L * C  # dense + QK^T, AV
            flops += n_layers * per_layer + 2 * C * C  # + pooler
    return 3 * flops


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def autocast():
        return bf16_autocast(device) if args.bf16 else contextlib.nullcontext()

    torch.manual_seed(args.seed)
    bert, tokenizer = load_backbone("minilm-l6")
    steps = task_batches(args, tokenizer, args.warmup + args.reps)
    models = build_models(args)
    names = list(models)
    times: dict[str, list[float]] = {n: [] for n in names}
    peak: dict[str, float] = {n: 0.0 for n in names}
    for r, step in enumerate(steps):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if cuda:
                sync()
                before = torch.cuda.memory_allocated(device)
                torch.cuda.reset_peak_memory_stats(device)
            sync()
            start = time.perf_counter()
            train_step(models[name], step, autocast)
            sync()
            elapsed = time.perf_counter() - start
            if r >= args.warmup:
                times[name].append(elapsed)
                if cuda:
                    peak[name] = max(peak[name],
                                     (torch.cuda.max_memory_allocated(device) - before) / 2**20)

    timed = steps[args.warmup:]
    tokens = statistics.mean(sum(int(b["attention_mask"].sum()) for b in s) for s in timed)
    slots = statistics.mean(sum(b["attention_mask"].numel() for b in s) for s in timed)
    flops = statistics.mean(train_flops(s, bert.config) for s in timed)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, device "
          f"{torch.cuda.get_device_name(device) if cuda else f'cpu x{torch.get_num_threads()}'}"
          f"{', bf16 autocast' if args.bf16 else ''}")
    print(f"step = {'+'.join(TASKS)} batches of {args.batch_size} ({args.pair_encoding} pairs): "
          f"{tokens:.0f} real tokens of {slots:.0f} padded slots ({1 - tokens / slots:.0%} "
          f"padding); median of {args.reps} after {args.warmup} warm-up")
    header = f"{'variant':<10} {'step ms':>9} {'hf/this':>8} {'saved MiB':>10} {'tokens/s':>9}"
    if cuda:
        header += f" {'peak MiB':>9} {'MFU':>6}"
    print(header)
    hf_time = statistics.median(times["hf"])
    for name in names:
        t = statistics.median(times[name])
        mib = saved_activation_mib(lambda n=name: train_step(models[n], timed[0], autocast))
        row = f"{name:<10} {t * 1e3:>9.1f} {hf_time / t:>8.2f} {mib:>10.1f} {tokens / t:>9.0f}"
        if cuda:
            row += f" {peak[name]:>9.0f} {flops / t / (args.peak_tflops * 1e12):>6.1%}"
        print(row)


if __name__ == "__main__":
    main()
