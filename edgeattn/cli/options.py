"""CLI options made from config fields, so no command writes its stage's options out again.

`@with_config(PruneConfig, flags={...})` gives a command one option per field of `PruneConfig` —
flag `--field-name` (or the one given), the field's default, its description as help — and calls it
with `config=PruneConfig(...)` built from what the user typed. A bad value is one line naming the flag
the user typed. The same config class is what the library functions take and what the recipe schema
composes, so a default is written once.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from edgeattn.config import StageConfig

# A field read as `type` on the command line, then turned into the field's value by `parse`.
Parser = tuple[type, Callable[[Any], Any]]


def cli_type(annotation: Any) -> Any:
    """The type Typer parses for a field: `X | None` -> X, tuples -> lists, Literals -> str."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return cli_type(args[0])
    if origin is typing.Literal:
        return type(args[0])
    if origin is tuple:
        return list[cli_type(args[0])]
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return Path
    return annotation


def flags_of(name: str, flags: Mapping[str, str | tuple[str, ...]], switch: bool = False) -> tuple[str, ...]:
    """The option's declarations: `--field-name` (`--x/--no-x` for a switch), or what `flags` gives."""
    flag = "--" + name.replace("_", "-")
    given = flags.get(name, f"{flag}/--no-{flag[2:]}" if switch else flag)
    return (given,) if isinstance(given, str) else tuple(given)


def with_config(
    cls: type[StageConfig],
    *,
    flags: Mapping[str, str | tuple[str, ...]] | None = None,
    exclude: tuple[str, ...] = (),
    parsers: Mapping[str, Parser] | None = None,
    param: str = "config",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command that takes `config: cls` (or `param: cls`, so two configs can stack, e.g.
    `BenchConfig` and `DeviceConfig`): it gets one CLI option per field of `cls` (but `exclude`);
    `flags` renames flags (`"distill": "--distill/--no-distill"`), `parsers` read a field from another
    CLI type first (`"target_macs": (str, parse_macs)`)."""
    flags, parsers = dict(flags or {}), dict(parsers or {})
    names = [n for n in cls.model_fields if n not in exclude]

    def option(name: str) -> inspect.Parameter:
        field = cls.model_fields[name]
        default = list(field.default) if isinstance(field.default, tuple) else field.default
        kind = parsers[name][0] if name in parsers else cli_type(field.annotation)
        return inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(
                (default or None) if typing.get_origin(kind) is list else default,
                *flags_of(name, flags, switch=kind is bool),
                help=escape(field.description or ""),
            ),
            annotation=kind,
        )

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)

        @functools.wraps(command)
        def wrapper(**values: Any) -> Any:
            given = {n: values.pop(n) for n in names if n in values}
            for name, (_, parse) in parsers.items():
                given[name] = parse(given[name])
            shown = {n: flags_of(n, flags)[0].split("/")[0] for n in names}
            return command(**values, **{param: cls.build(flags=shown, **given)})

        kept = [p for p in signature.parameters.values() if p.name != param]
        wrapper.__signature__ = signature.replace(parameters=[*kept, *map(option, names)])  # type: ignore[attr-defined]
        return wrapper

    return decorate
