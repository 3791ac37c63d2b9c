"""Each claim against what was measured: the measurement, its interval and a verdict.

A metric claim compares two recipes' dev scores (:meth:`Evidence.compare`, the paired bootstrap
over examples and seeds); a weights claim reads the task weights of a learned weighting in each
seed's last epoch (the favoured task's weight minus the largest other, resampling the seeds); a
bench claim reads a step-time ratio from ``results/bench/BENCH.json`` (median over the
interleaved repetitions, the interval their range).

Verdicts, for ``expect = "higher"`` (``"lower"`` mirrored) and a null of 0 (a difference) or 1 (a
ratio): "holds" when the interval lies above the null, "does not hold: the other way" when
below, else "not distinguishable at this budget". For ``expect = "about"`` with a value: "holds"
when the interval contains the value but not the null; "not distinguishable at this budget" when
it contains both. When it misses the value: "the direction holds; smaller than claimed" (or
larger, meaning further from the null) if it lies on the value's side of the null (the effect the
claim named, of another size), else "does not hold: smaller than claimed" (or larger).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .bootstrap import NOT_DISTINGUISHABLE, Interval, seed_bootstrap
from .claims import Claim
from .evidence import EXAMPLES_AND_SEEDS, FEW_SEEDS, SEEDS_ALONE, Evidence

NOT_RUN = "not run yet"
HOLDS = "holds"


def verdict(claim: Claim, interval: Interval, null: float) -> str:
    """The claim's verdict from a measured interval (see the module docstring)."""
    if claim.expect == "about":
        if interval.contains(claim.value):
            return NOT_DISTINGUISHABLE if interval.contains(null) else HOLDS
        if claim.value > null:
            toward_null, beyond_null = interval.high < claim.value, interval.low > null
        else:
            toward_null, beyond_null = interval.low > claim.value, interval.high < null
        side = "smaller" if toward_null else "larger"
        if beyond_null:
            return f"the direction holds; {side} than claimed"
        return f"does not hold: {side} than claimed"
    above = interval.low > null
    below = interval.high < null
    if not (above or below):
        return NOT_DISTINGUISHABLE
    return HOLDS if above == (claim.expect == "higher") else "does not hold: the other way"


def bench_ratio(bench: Mapping, recipe: str, reference: str) -> tuple[Interval, int]:
    """recipe's step time over reference's, per interleaved repetition of the bench (both as
    ratios to the bench's common reference step): median and range, and the repetitions."""
    ratios = dict(bench["ratios"])
    repeats = len(next(iter(ratios.values())))
    ratios.setdefault(bench["reference"], [1.0] * repeats)
    for name in (recipe, reference):
        if name not in ratios:
            raise ValueError(f"bench {bench['bench']!r} measured no {name!r}; it has "
                             f"{', '.join(sorted(ratios))}")
    values = [a / b for a, b in zip(ratios[recipe], ratios[reference])]
    return Interval(statistics.median(values), min(values), max(values)), len(values)


def read_bench(bench_dir: str | Path, name: str) -> dict | None:
    path = Path(bench_dir) / f"{name}.json"
    if not path.exists():
        return None
    bench = json.loads(path.read_text(encoding="utf-8"))
    for key in ("bench", "reference", "ratios"):
        if key not in bench:
            raise ValueError(f"{path}: not a bench result (no {key!r})")
    return bench


def _row(claim: Claim, profile: str, **values) -> dict:
    test = (f"{claim.recipe} vs {claim.reference}" if claim.reference else claim.recipe)
    return {"id": claim.id, "report": claim.report, "claim": claim.text, "test": test,
            "metric": claim.metric + ("" if claim.evaluation == "selected"
                                      else f" ({claim.evaluation} evaluation)"),
            "confirms": claim.confirms, "profile": profile, "measured": None, "low": None,
            "high": None, "seeds": None, "interval": "", "verdict": NOT_RUN, "detail": "",
            **values}


def _measured(interval: Interval) -> dict:
    return {"measured": interval.estimate, "low": interval.low, "high": interval.high}


def judge(claim: Claim, profile: str, evidence: Evidence, bench_dir: str | Path) -> dict:
    """One row of the claims table: the claim, what tests it, the measurement with its interval
    and the verdict (or why there is none yet)."""
    if profile in claim.untestable:
        return _row(claim, profile, verdict="not testable at this budget",
                    detail=claim.untestable[profile])
    if claim.kind == "bench":
        bench = read_bench(bench_dir, claim.bench)
        if bench is None:
            return _row(claim, profile, verdict="not measured yet",
                        detail=f"run the bench that writes {claim.bench}.json")
        interval, repeats = bench_ratio(bench, claim.recipe, claim.reference)
        return _row(claim, profile, **_measured(interval), interval="range",
                    verdict=verdict(claim, interval, 1.0),
                    detail=f"median of {repeats} interleaved repetitions, range shown")
    if claim.kind == "weights":
        weights = evidence.last_epoch_weights(claim.recipe)
        if len(weights) < FEW_SEEDS:
            return _row(claim, profile, seeds=len(weights),
                        detail=f"{len(weights)} of the {FEW_SEEDS} seeds it needs recorded")
        margins = [w[claim.metric] - max(v for t, v in w.items() if t != claim.metric)
                   for w in weights.values()]
        interval = seed_bootstrap(np.array(margins))
        means = {t: float(np.mean([w[t] for w in weights.values()])) for t in
                 next(iter(weights.values()))}
        return _row(claim, profile, **_measured(interval), seeds=len(weights),
                    interval=SEEDS_ALONE, verdict=verdict(claim, interval, 0.0),
                    detail="last-epoch mean weights " + ", ".join(
                        f"{t} {v:.3f}" for t, v in means.items()))
    if claim.evaluation == "first":
        interval, seeds, kind = evidence.at_first_evaluation(claim.recipe, claim.reference,
                                                             claim.metric)
    else:
        compared = evidence.compare(claim.recipe, claim.reference)
        interval = compared[claim.metric] if compared else None
        seeds, kind = len(evidence.common_seeds(claim.recipe, claim.reference)), \
            EXAMPLES_AND_SEEDS
    if interval is None:
        return _row(claim, profile, seeds=seeds,
                    detail=f"{seeds} common seed(s) recorded" if seeds else "")
    return _row(claim, profile, **_measured(interval), seeds=seeds, interval=kind,
                verdict=verdict(claim, interval, 0.0))
