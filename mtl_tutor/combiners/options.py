"""Validation of combiner constructor arguments; every error names the offending parameter."""

from __future__ import annotations

import math
from collections.abc import Sequence


def real(name: str, value: object) -> float:
    """``value`` as a finite float, or a ValueError naming ``name`` (NaN and infinities too)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def positive(name: str, value: object) -> float:
    number = real(name, value)
    if not number > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return number


def non_negative(name: str, value: object) -> float:
    number = real(name, value)
    if not number >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return number


def in_unit_interval(name: str, value: object) -> float:
    """A number in the closed interval [0, 1]."""
    number = real(name, value)
    if not 0 <= number <= 1:
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return number


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def one_of(name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return str(value)
