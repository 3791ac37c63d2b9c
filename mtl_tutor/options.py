"""Typed options: a value checked against its declared type, choices and bounds.

Every option is declared once, with its type: a field of
:class:`~mtl_tutor.run_config.TrainConfig` (type, default, bounds and one line of help, through
:func:`option`), or a typed keyword parameter of the thing it configures (a head, a loss, a
sampler, PALs). :func:`convert` checks a value against such a declaration and returns it in the
declared type; an :class:`OptionError` names the option and says what was expected, whether the
value came from Python, a TOML recipe, a JSON file or the command line.

Types understood: ``bool``, ``int``, ``float`` (finite: NaN and infinities are refused), ``str``,
``Literal[...]`` choices, ``X | None``, ``tuple[X, ...]`` (also from a comma-separated string),
``tuple[X, Y]``, ``list[X]``, ``dict[str, X]`` and ``Annotated[X, Bounds(...)]``. An integer is
accepted where a float is declared, never the reverse.

>>> convert(0.5, float, "lr", Bounds(gt=0))
0.5
>>> convert(float("nan"), float, "lr", Bounds(gt=0))
Traceback (most recent call last):
...
mtl_tutor.options.OptionError: lr must be a finite number > 0, got nan
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, Field, dataclass, field
from typing import Annotated, Any, Literal, Union

NoneType = type(None)


class OptionError(ValueError):
    """A bad option value. ``option``: its dotted path (``lr``, ``heads.sts.scale``);
    ``problem``: what is wrong (``must be > 0, got -1``, or ``: ...`` for a refusal in the
    words of the thing the option configures)."""

    def __init__(self, option: str, problem: str):
        super().__init__(option + ("" if problem.startswith(":") else " ") + problem)
        self.option, self.problem = option, problem

    def __reduce__(self):
        return type(self), (self.option, self.problem)


@dataclass(frozen=True)
class Bounds:
    """Limits of a number: ``ge`` / ``gt`` from below, ``le`` / ``lt`` from above."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def holds(self, x: float) -> bool:
        return ((self.ge is None or x >= self.ge) and (self.gt is None or x > self.gt)
                and (self.le is None or x <= self.le) and (self.lt is None or x < self.lt))

    def __str__(self) -> str:
        low = (f"[{self.ge:g}" if self.ge is not None else
               f"({self.gt:g}" if self.gt is not None else None)
        high = (f"{self.le:g}]" if self.le is not None else
                f"{self.lt:g})" if self.lt is not None else None)
        if low and high:
            return f"in {low}, {high}"
        if low:
            return (">= " if low[0] == "[" else "> ") + low[1:]
        if high:
            return ("<= " if high[-1] == "]" else "< ") + high[:-1]
        return ""


def option(default: Any = MISSING, help: str = "", *, bounds: Bounds | None = None,
           method: bool = True, cli: Any = None, metavar: str | tuple | None = None) -> Any:
    """A dataclass field with what :mod:`mtl_tutor.cli_arguments` and :func:`convert_field`
    read: ``help`` (one line), ``bounds`` of a number, ``method`` (False for settings of how a
    run executes that may change when it resumes: paths, device, logging), ``cli``, a
    command-line form (None: derived from the type), and the ``metavar`` of its flag."""
    metadata = {"help": help, "bounds": bounds, "method": method, "cli": cli, "metavar": metavar}
    if isinstance(default, dict | list):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def describe(annotation: Any, bounds: Bounds | None = None) -> str:
    """What a value of ``annotation`` looks like, in words."""
    annotation, bounds = _unannotated(annotation, bounds)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    limit = f" {bounds}" if bounds and str(bounds) else ""
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer" + limit
    if annotation is float:
        return "a finite number" + limit
    if annotation is str:
        return "a string"
    if annotation is NoneType:
        return "none"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        ordered = sorted(args, key=lambda a: a is NoneType)
        return " or ".join(describe(a, bounds) for a in ordered)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return f"a list, each {describe(args[0], bounds)}"
    if origin is tuple:
        return f"a list of {len(args)} values, each {describe(args[0], bounds)}"
    if origin is list:
        return f"a list, each {describe(args[0], bounds)}"
    if origin in (dict, Mapping):
        return f"a mapping of names to {describe(args[1], bounds)}"
    return getattr(annotation, "__name__", str(annotation))


def convert(value: Any, annotation: Any, option: str, bounds: Bounds | None = None) -> Any:
    """``value`` as the type ``annotation`` declares, within ``bounds``; else an OptionError
    naming ``option``."""
    annotation, bounds = _unannotated(annotation, bounds)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any or annotation is object:
        return value
    if origin in (Union, types.UnionType):
        if value is None and NoneType in args:
            return None
        for arg in (a for a in args if a is not NoneType):
            try:
                return convert(value, arg, option, bounds)
            except OptionError as e:
                if e.option != option:  # an element inside the value is wrong: say which
                    raise
        raise _mismatch(value, annotation, option, bounds)
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise _mismatch(value, annotation, option, bounds)
    if origin is tuple or origin is list:
        return _sequence(value, annotation, option, bounds)
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _mismatch(value, annotation, option, bounds)
        return {_key(k, args[0], option): convert(v, args[1], f"{option}.{k}", bounds)
                for k, v in value.items()}
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool) \
                and (bounds is None or bounds.holds(value)):
            return int(value)
    elif annotation is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool) \
                and math.isfinite(value) and (bounds is None or bounds.holds(value)):
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
    else:
        raise TypeError(f"{option}: the type {annotation!r} is not one that options can have")
    raise _mismatch(value, annotation, option, bounds)


def convert_field(f: Field, value: Any, annotation: Any) -> Any:
    """The value of dataclass field ``f`` (declared as ``annotation``) converted and bounded."""
    return convert(value, annotation, f.name, f.metadata.get("bounds"))


def keyword_parameters(target: Callable) -> dict[str, tuple[Any, Any]]:
    """``{name: (declared type, default)}`` of the keyword parameters of a function or class
    (a ``functools.partial`` of one included); the type is ``Any`` where none is declared."""
    inner = target
    while isinstance(inner, functools.partial):
        inner = inner.func
    hints = typing.get_type_hints(inner.__init__ if inspect.isclass(inner) else inner,
                                  include_extras=True)
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {name: (hints.get(name, Any), p.default)
            for name, p in inspect.signature(target).parameters.items() if p.kind in kinds}


def keyword_options(target: Callable, options: Mapping[str, Any], option: str,
                    skip: Iterable[str] = ()) -> dict[str, Any]:
    """``options`` checked against the typed keyword parameters of ``target`` (those in
    ``skip`` are supplied by the caller, not by the user): unknown names are refused, listing
    the valid ones, and each value is converted to its declared type."""
    if not isinstance(options, Mapping):
        raise OptionError(option, f"must be a mapping of option names to values, got {options!r}")
    skip = set(skip)
    declared = {k: v for k, v in keyword_parameters(target).items() if k not in skip}
    unknown = [k for k in options if k not in declared]
    if unknown:
        valid = ", ".join(declared) or "none"
        raise OptionError(option, f"has no option {', '.join(map(repr, unknown))}; "
                                  f"valid options: {valid}")
    return {k: convert(v, declared[k][0], f"{option}.{k}") for k, v in options.items()}


def positive_int(value: Any, name: str) -> int:
    """``value`` if it is an integer >= 1, else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise OptionError(name, f"must be a positive integer, got {value!r}")
    return int(value)


def _unannotated(annotation: Any, bounds: Bounds | None) -> tuple[Any, Bounds | None]:
    """The type inside ``Annotated[type, Bounds(...)]`` and the bounds (declared ones first)."""
    if typing.get_origin(annotation) is Annotated:
        base, *extras = typing.get_args(annotation)
        declared = next((e for e in extras if isinstance(e, Bounds)), None)
        return base, bounds or declared
    return annotation, bounds


def _sequence(value: Any, annotation: Any, option: str, bounds: Bounds | None) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is tuple and isinstance(value, str) and len(args) == 2 and args[1] is Ellipsis:
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise _mismatch(value, annotation, option, bounds)
    items = list(value)
    if origin is list or (len(args) == 2 and args[1] is Ellipsis):
        element_types = [args[0]] * len(items)
    elif len(items) == len(args):
        element_types = list(args)
    else:
        raise _mismatch(value, annotation, option, bounds)
    converted = [convert(v, t, f"{option}[{i}]", bounds)
                 for i, (v, t) in enumerate(zip(items, element_types))]
    return converted if origin is list else tuple(converted)


def _key(key: Any, annotation: Any, option: str) -> Any:
    return convert(key, annotation, f"{option} key {key!r}")


def _mismatch(value: Any, annotation: Any, option: str, bounds: Bounds | None) -> OptionError:
    return OptionError(option, f"must be {describe(annotation, bounds)}, got {value!r}")
