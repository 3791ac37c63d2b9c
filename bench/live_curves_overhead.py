"""Share of a training run's time spent drawing its live curves (the target: under 2%).

Trains ``--steps`` steps with a :class:`~mtl_tutor.viz.LiveCurves` attached, as a notebook or a
terminal does (``--notebook`` draws into a ``FigureWidget``, the default a tqdm bar and the
figure's redraws), and prints the time inside its callbacks over the run's training time. The
callbacks are timed from inside (``LiveCurves.callback_seconds``), so the machine's load moves
both sides alike.

    python bench/live_curves_overhead.py [--backbone minilm-l6] [--data DIR] [--steps 60]
        [--notebook]

Without ``--data`` it writes and trains on the synthetic corpus.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from statistics import median

from mtl_tutor.data.synthetic import write_synthetic_corpus
from mtl_tutor.run_config import TrainConfig
from mtl_tutor.train import train
from mtl_tutor.viz import LiveCurves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="minilm-l6")
    parser.add_argument("--data", default=None)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--combiner", default="pcgrad")
    parser.add_argument("--notebook", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or write_synthetic_corpus(Path(tmp) / "data", seed=0)
        config = TrainConfig(backbone=args.backbone, data=str(data), out=str(Path(tmp) / "run"),
                             combiner=args.combiner, max_steps=args.steps, batch_size=16,
                             max_length=64, eval_every=args.steps // 3, progress=False)
        curves = LiveCurves(every_seconds=2.0, every_steps=10, notebook=args.notebook)
        redraws = []  # seconds of each redraw: the first ones build the figure, later restyle
        redraw = curves._redraw

        def timed_redraw() -> None:
            started = time.perf_counter()
            redraw()
            redraws.append(time.perf_counter() - started)

        curves._redraw = timed_redraw
        result = train(config, callbacks=[curves])
    share = curves.callback_seconds / result["seconds"]
    print(f"backbone {args.backbone}, {args.steps} steps of {args.combiner}, "
          f"{'notebook widget' if args.notebook else 'terminal'}: {len(redraws)} redraws, "
          f"the slowest {1000 * max(redraws):.1f} ms, median {1000 * median(redraws):.1f} ms")
    print(f"callbacks {curves.callback_seconds:.3f} s of {result['seconds']:.1f} s training "
          f"= {100 * share:.2f}%")


if __name__ == "__main__":
    main()
