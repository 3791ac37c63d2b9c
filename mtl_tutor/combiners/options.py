"""Validation of combiner constructor arguments; every error names the offending parameter.

Numbers must be finite: NaN and infinities are refused wherever a number is expected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def real(name: str, value: object) -> float:
    """``value`` as a finite float, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
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


def open_interval(name: str, value: object, low: float, high: float) -> float:
    """A number strictly between ``low`` and ``high``."""
    number = real(name, value)
    if not low < number < high:
        raise ValueError(f"{name} must lie in ({low:g}, {high:g}), got {value!r}")
    return number


def integer(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return value


def positive_int(name: str, value: object) -> int:
    if integer(name, value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def one_of(name: str, value: object, choices: Sequence) -> object:
    """``value`` if it is one of ``choices`` (compared by type as well as value)."""
    if not any(type(value) is type(choice) and value == choice for choice in choices):
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value
