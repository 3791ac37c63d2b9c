"""The reports' claims, each with the measurement that tests it (``configs/claims.toml``).

Each ``[[claim]]`` names the report, the claim in words and how it is tested:

- ``kind = "metric"``: ``recipe`` against ``reference`` on the dev ``metric`` (sst_acc,
  para_acc, sts_pearson or overall) of the selected model (``evaluation = "selected"``) or of
  the first evaluation (``"first"``: how fast a recipe learns);
- ``kind = "weights"``: the mean weight a learned weighting gives each task in the last epoch of
  ``recipe`` (from the step records); ``metric`` names the task the claim says it favours;
- ``kind = "bench"``: a cost measured by a bench script into ``results/bench/BENCH.json``,
  ``recipe`` against ``reference`` (entries of that file), ``metric = "step time ratio"``.

``expect`` says what confirms the claim: ``"higher"`` or ``"lower"`` (a difference above or
below 0, a ratio above or below 1, at the 95% level) or ``"about"`` with ``value`` (the interval
holds that value, and not the null: 0 for a difference, 1 for a ratio). ``confirms`` says it in
words. ``untestable.PROFILE = "why"`` marks a claim that budget cannot test.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..evaluate import METRIC_KEYS
from ..options import OptionError, convert
from .recipes import NAME_PATTERN, read_toml

CLAIM_KINDS = ("metric", "weights", "bench")
EXPECTATIONS = ("higher", "lower", "about")
EVALUATIONS = ("selected", "first")
METRICS = ("sst_acc", "para_acc", "sts_pearson", "overall")
CLAIM_KEYS = ("id", "report", "text", "kind", "recipe", "reference", "metric", "evaluation",
              "expect", "value", "confirms", "untestable", "bench")
STEP_TIME_RATIO = "step time ratio"


@dataclass(frozen=True)
class Claim:
    """One report claim and the measurement that tests it (see the module docstring)."""

    id: str
    report: str
    text: str
    kind: str
    recipe: str
    reference: str | None
    metric: str
    expect: str
    confirms: str
    value: float | None = None
    evaluation: str = "selected"
    bench: str | None = None
    untestable: dict[str, str] = field(default_factory=dict)

    @property
    def recipes(self) -> tuple[str, ...]:
        """The leaderboard recipes the claim needs (none for a bench claim)."""
        if self.kind == "bench":
            return ()
        return (self.recipe,) + ((self.reference,) if self.reference else ())


def _claim(raw: dict) -> Claim:
    unknown = [k for k in raw if k not in CLAIM_KEYS]
    if unknown:
        raise OptionError(repr(unknown[0]), f"is no claim key; valid keys: "
                                            f"{', '.join(CLAIM_KEYS)}")
    text = {k: convert(raw.get(k), str, k) for k in ("id", "report", "text", "kind", "recipe",
                                                      "metric", "expect", "confirms")}
    if not re.fullmatch(NAME_PATTERN, text["id"]):
        raise OptionError("id", f"must be letters, digits, '_', '.' or '-', got {text['id']!r}")
    kind, expect = text["kind"], text["expect"]
    if kind not in CLAIM_KINDS:
        raise OptionError("kind", f"must be one of {', '.join(CLAIM_KINDS)}, got {kind!r}")
    if expect not in EXPECTATIONS:
        raise OptionError("expect", f"must be one of {', '.join(EXPECTATIONS)}, got {expect!r}")
    value = convert(raw.get("value"), float | None, "value")
    if (expect == "about") != (value is not None):
        raise OptionError("value", "is given exactly when expect = \"about\"")
    reference = convert(raw.get("reference"), str | None, "reference")
    evaluation = convert(raw.get("evaluation", "selected"), str, "evaluation")
    if evaluation not in EVALUATIONS:
        raise OptionError("evaluation", f"must be one of {', '.join(EVALUATIONS)}, "
                                        f"got {evaluation!r}")
    bench = convert(raw.get("bench"), str | None, "bench")
    metric = text["metric"]
    if kind == "metric" and (metric not in METRICS or reference is None):
        raise OptionError("metric", f"of a metric claim must be one of {', '.join(METRICS)}, "
                                    f"with a reference recipe; got {metric!r}")
    if kind == "weights" and (metric not in METRIC_KEYS or reference is not None
                              or expect != "higher"):
        raise OptionError("metric", f"of a weights claim names the favoured task (one of "
                                    f"{', '.join(METRIC_KEYS)}), with expect = \"higher\" and "
                                    f"no reference; got {metric!r}")
    if kind == "bench" and (bench is None or reference is None or metric != STEP_TIME_RATIO):
        raise OptionError("bench", f"a bench claim names its bench file, a recipe and a "
                                   f"reference among its entries, and metric = "
                                   f"\"{STEP_TIME_RATIO}\"")
    if kind != "bench" and bench is not None:
        raise OptionError("bench", "is only for kind = \"bench\"")
    untestable = convert(raw.get("untestable", {}), dict[str, str], "untestable")
    return Claim(text["id"], text["report"], text["text"], kind, text["recipe"], reference,
                 metric, expect, text["confirms"], value, evaluation, bench, untestable)


def load_claims(path: str | Path) -> list[Claim]:
    """The claims of a claims.toml file, in its order; errors name the file and the claim."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such claims file (see "
                                f"mtl_tutor.leaderboard.claims)")
    raw = read_toml(path)
    if set(raw) != {"claim"} or not isinstance(raw["claim"], list):
        raise ValueError(f"{path}: expected [[claim]] tables only, got keys {sorted(raw)}")
    claims = []
    for number, entry in enumerate(raw["claim"], 1):
        try:
            claims.append(_claim(entry))
        except OptionError as e:
            name = entry.get("id", number) if isinstance(entry, dict) else number
            raise ValueError(f"{path} (claim {name}): {e}") from e
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: claim ids {sorted({i for i in ids if ids.count(i) > 1})} "
                         f"appear more than once")
    return claims


def check_claim_recipes(claims: Iterable[Claim], run_names: Iterable[str], path: Any) -> None:
    """Refuse claims that name a recipe no recipe file defines."""
    known = set(run_names)
    for claim in claims:
        unknown = [r for r in claim.recipes if r not in known]
        if unknown:
            raise ValueError(f"{path} (claim {claim.id}): recipe {unknown[0]!r} is not among "
                             f"the recipes of --configs")
