"""Command-line arguments generated from a dataclass of typed options.

Every field of the dataclass becomes a flag, ``--field-name``, with the field's help line and
default; a field whose type is ``bool`` becomes a switch (``--no-x`` when it defaults to True).
A field may declare another form in its ``cli`` metadata (see :func:`mtl_tutor.options.option`):

- :class:`KeyValues`: ``--combiner-opt KEY=VALUE`` (repeatable) for a mapping of options;
- :class:`TaskChoices`: ``--head TASK=NAME`` and ``--head-opt TASK.KEY=VALUE``;
  with ``several``: ``--aux-loss TASK=NAME`` and ``--aux-loss-opt TASK.NAME.KEY=VALUE``;
- :class:`DefaultOrPerTask`: ``--pair-encoding VALUE`` for every task, ``TASK=VALUE`` for one;
- :class:`SwitchWithOptions`: ``--pals`` and ``--pals-opt KEY=VALUE``;
- :class:`SetThrough`: no flag of its own (another field's flag sets it).

Parsing keeps values as the user wrote them, numbers read as numbers (``none`` for an optional
field); the dataclass checks them, so a bad value gets the same error as in Python or in a TOML
recipe. Only the flags given reach the dataclass: defaults live in one place, its fields.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from dataclasses import MISSING, Field, fields
from typing import Any, Literal, Union

NoneType = type(None)


def parse_options(pairs: list[str], flag: str) -> dict:
    """``["k=v", ...]`` -> dict; values are read as JSON when they parse (numbers, true, lists)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: {flag} expects KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def nested_options(pairs: list[str], flag: str, depth: int) -> dict:
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


def from_text(text: str, annotation: Any) -> Any:
    """A command-line word as the value of a field declared ``annotation``: a number where a
    number is declared (when it reads as one), None for ``none`` where None is allowed, else
    the text itself (the dataclass then says what is wrong with it)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        if NoneType in args and text.lower() == "none":
            return None
        (inner, *_) = [a for a in args if a is not NoneType]
        return from_text(text, inner)
    for kind in (int, float):
        if annotation is kind:
            try:
                return kind(text)
            except ValueError:
                return text
    return text


def help_line(f: Field, annotation: Any) -> str:
    """The field's help and its default, for ``--help``."""
    text = f.metadata.get("help", "")
    if annotation is bool:
        text += " (on unless this flag is given)" if f.default else ""
    elif f.default is not MISSING and f.default not in ("", None, ()):
        shown = ",".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
        text += f" [default: {shown}]"
    return text.replace("%", "%%")


METAVARS = {int: "N", float: "X"}


class Scalar:
    """``--field-name VALUE`` (or a switch for a bool; ``nargs`` values for a fixed tuple)."""

    def add(self, parser: argparse.ArgumentParser, f: Field, annotation: Any) -> None:
        (flag,) = self.flags(f)
        if annotation is bool:
            parser.add_argument(flag, dest=f.name, action="store_false" if f.default else
                                "store_true", default=argparse.SUPPRESS,
                                help=help_line(f, annotation))
            return
        inner = [a for a in typing.get_args(annotation) if a is not NoneType]
        fixed = [t for t in [annotation, *inner] if typing.get_origin(t) is tuple
                 and Ellipsis not in typing.get_args(t)]
        nargs, element = None, annotation
        if fixed:
            nargs, element = len(typing.get_args(fixed[0])), typing.get_args(fixed[0])[0]
        simple = inner[0] if len(inner) == 1 else annotation  # X | None -> X
        metavar = f.metadata.get("metavar") or METAVARS.get(simple)
        if typing.get_origin(simple) is Literal:
            metavar = "{" + ",".join(typing.get_args(simple)) + "}"
        parser.add_argument(flag, dest=f.name, nargs=nargs, metavar=metavar,
                            type=lambda text: from_text(text, element),
                            default=argparse.SUPPRESS, help=help_line(f, annotation))

    def flags(self, f: Field) -> tuple[str, ...]:
        switched_off = f.default is True  # a bool that defaults to True: --no-NAME
        return ("--" + ("no-" if switched_off else "") + f.name.replace("_", "-"),)

    def values(self, args: argparse.Namespace, f: Field) -> dict:
        return {f.name: getattr(args, f.name)} if hasattr(args, f.name) else {}


class KeyValues:
    """``FLAG KEY=VALUE`` (repeatable) -> ``{KEY: VALUE, ...}``."""

    def __init__(self, flag: str):
        self.flag = flag

    def add(self, parser: argparse.ArgumentParser, f: Field, annotation: Any) -> None:
        parser.add_argument(self.flag, dest=f.name, action="append", metavar="KEY=VALUE",
                            default=argparse.SUPPRESS, help=help_line(f, annotation))

    def flags(self, f: Field) -> tuple[str, ...]:
        return (self.flag,)

    def values(self, args: argparse.Namespace, f: Field) -> dict:
        if not hasattr(args, f.name):
            return {}
        return {f.name: parse_options(getattr(args, f.name), self.flag)}


class TaskChoices:
    """``NAME_FLAG TASK=NAME`` and ``OPTION_FLAG TASK.KEY=VALUE`` (both repeatable) ->
    ``{TASK: {"name": NAME, KEY: VALUE, ...}}`` (options without a name tune the default).

    With ``several``, a task holds several named entries: ``OPTION_FLAG TASK.NAME.KEY=VALUE``
    -> ``{TASK: {NAME: {KEY: VALUE, ...}}}``.
    """

    def __init__(self, name_flag: str, option_flag: str, several: bool = False):
        self.name_flag, self.option_flag, self.several = name_flag, option_flag, several

    def add(self, parser: argparse.ArgumentParser, f: Field, annotation: Any) -> None:
        parser.add_argument(self.name_flag, dest=f"{f.name}__names", action="append",
                            metavar="TASK=NAME", default=argparse.SUPPRESS,
                            help=help_line(f, annotation))
        key = "TASK.NAME.KEY" if self.several else "TASK.KEY"
        parser.add_argument(self.option_flag, dest=f"{f.name}__options", action="append",
                            metavar=f"{key}=VALUE", default=argparse.SUPPRESS,
                            help=f"an option of a task's {self.name_flag[2:]} (repeatable)")

    def flags(self, f: Field) -> tuple[str, ...]:
        return self.name_flag, self.option_flag

    def flag_for(self, option: str) -> str:
        """The option flag for a path to one option (``heads.sts.scale``), else the name flag
        (``heads.sts``, ``heads.sts.name``)."""
        parts = option.split(".")
        inside = len(parts) > (3 if self.several else 2) and parts[-1] != "name"
        return self.option_flag if inside else self.name_flag

    def values(self, args: argparse.Namespace, f: Field) -> dict:
        names = getattr(args, f"{f.name}__names", [])
        options = getattr(args, f"{f.name}__options", [])
        if not names and not options:
            return {}
        chosen: dict = {}
        for task, name in task_names(names, self.name_flag):
            if self.several:
                chosen.setdefault(task, {})[name] = {}
            else:
                chosen[task] = {"name": name}
        for task, values in nested_options(options, self.option_flag,
                                           3 if self.several else 2).items():
            entry = chosen.setdefault(task, {})
            if self.several:
                for name, named in values.items():
                    entry.setdefault(name, {}).update(named)
            else:
                entry.update(values)
        return {f.name: chosen}


class DefaultOrPerTask:
    """``FLAG VALUE`` sets this field (every task); ``FLAG TASK=VALUE`` sets one task's entry
    in the field ``per_task`` (repeatable)."""

    def __init__(self, flag: str, per_task: str):
        self.flag, self.per_task = flag, per_task

    def add(self, parser: argparse.ArgumentParser, f: Field, annotation: Any) -> None:
        parser.add_argument(self.flag, dest=f.name, action="append", metavar="VALUE|TASK=VALUE",
                            default=argparse.SUPPRESS,
                            help=help_line(f, annotation) + "; TASK=VALUE for one task "
                                                            "(repeatable)")

    def flags(self, f: Field) -> tuple[str, ...]:
        return (self.flag,)

    def values(self, args: argparse.Namespace, f: Field) -> dict:
        if not hasattr(args, f.name):
            return {}
        chosen: dict = {}
        for value in getattr(args, f.name):
            task, sep, setting = value.rpartition("=")
            if sep:
                chosen.setdefault(self.per_task, {})[task] = setting
            else:
                chosen[f.name] = setting
        return chosen


class SwitchWithOptions:
    """``SWITCH`` turns the field on (an empty mapping of options), ``OPTION_FLAG KEY=VALUE``
    (repeatable, implies the switch) sets its options; absent, the field keeps its default."""

    def __init__(self, switch: str, option_flag: str):
        self.switch, self.option_flag = switch, option_flag

    def add(self, parser: argparse.ArgumentParser, f: Field, annotation: Any) -> None:
        parser.add_argument(self.switch, dest=f"{f.name}__on", action="store_true",
                            default=argparse.SUPPRESS, help=help_line(f, annotation))
        parser.add_argument(self.option_flag, dest=f"{f.name}__options", action="append",
                            metavar="KEY=VALUE", default=argparse.SUPPRESS,
                            help=f"an option of {f.name} (repeatable; implies {self.switch})")

    def flags(self, f: Field) -> tuple[str, ...]:
        return self.switch, self.option_flag

    def values(self, args: argparse.Namespace, f: Field) -> dict:
        options = getattr(args, f"{f.name}__options", [])
        if not options and not hasattr(args, f"{f.name}__on"):
            return {}
        return {f.name: parse_options(options, self.option_flag)}


class SetThrough:
    """No flag of its own: the field is set through ``flag``, another field's."""

    def __init__(self, flag: str):
        self.flag = flag

    def add(self, parser: argparse.ArgumentParser, f: Field, annotation: Any) -> None:
        return None

    def flags(self, f: Field) -> tuple[str, ...]:
        return (self.flag,)

    def values(self, args: argparse.Namespace, f: Field) -> dict:
        return {}


def form_of(f: Field):
    return f.metadata.get("cli") or Scalar()


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag (or the declared form) per field of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        form_of(f).add(parser, f, hints[f.name])


def option_values(args: argparse.Namespace, cls: type) -> dict:
    """The field values the parsed ``args`` give, for ``cls(**values)`` (flags not given are
    left out, so the fields' defaults apply)."""
    values: dict = {}
    for f in fields(cls):
        values.update(form_of(f).values(args, f))
    return values


def flag_of(cls: type, option: str) -> str | None:
    """The flag that sets ``option`` (a dotted path starting with a field of ``cls``): the
    form's own choice, else its option flag for a path inside the field and its first flag for
    the field itself; None if no field of ``cls`` starts the path."""
    name = option.split(".")[0].split("[")[0]
    for f in fields(cls):
        if f.name == name:
            form = form_of(f)
            if hasattr(form, "flag_for"):
                return form.flag_for(option)
            flags = form.flags(f)
            return flags[-1] if "." in option else flags[0]
    return None
