"""The base of every stage's config object (`TrainConfig`, `PruneConfig`, `QuantizeConfig`, ...).

Each option of a stage is written once, as a field of its config: the library functions take
`config=`, the CLI builds the config from its flags (defaults and help come from the fields), and the
recipe schema composes the same classes. Unknown keys are errors with a did-you-mean, so a typo never
silently switches something off; out-of-range values become one-line `InputError`s that name the
flag or key the user typed.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from edgeattn.errors import InputError

C = TypeVar("C", bound="StageConfig")


def refuse_unknown_keys(data: Any, known: list[str]) -> Any:
    """A typo must not silently switch something off: unknown keys are errors with a did-you-mean."""
    if isinstance(data, dict):
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.5)
                hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
                raise PydanticCustomError(
                    "unknown_key", "unknown key — {hint}", {"hint": hint, "at": str(key)}
                )
    return data


class StageConfig(BaseModel):
    """Options of one stage: immutable, validated, JSON-able (`model_dump(mode="json")`)."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)

    # Fields a recipe may not set in this section (the recipe decides them elsewhere).
    recipe_excluded: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def known_keys(cls) -> list[str]:
        return [k for k in cls.model_fields if k not in cls.recipe_excluded]

    @model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data: Any) -> Any:
        return refuse_unknown_keys(data, cls.known_keys())

    @classmethod
    def build(
        cls: type[C], base: C | None = None, flags: Mapping[str, str] | None = None, **values: Any
    ) -> C:
        """`base` (default: all defaults) with `values` replaced, validated; a bad value is one
        `InputError` naming it as the user wrote it (`flags` maps field names to CLI flags)."""
        unknown = sorted(set(values) - set(cls.model_fields))
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(cls.model_fields), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            known = ", ".join(cls.model_fields)
            raise InputError(
                f"{cls.__name__} has no option {', '.join(unknown)}", f"{hint}its options are: {known}"
            )
        data = {**(base.model_dump() if base is not None else {}), **values}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise config_error(cls, exc, flags or {}) from None


def value_range(cls: type[BaseModel], name: str) -> str:
    """The allowed range of a numeric field as people write it: '[0, 1)', '≥ 1', '(0, 100]'."""
    lo, hi, lo_open, hi_open = None, None, False, False
    for meta in cls.model_fields[name].metadata:
        for attr, is_lo, is_open in (
            ("ge", True, False),
            ("gt", True, True),
            ("le", False, False),
            ("lt", False, True),
        ):
            v = getattr(meta, attr, None)
            if v is None:
                continue
            if is_lo:
                lo, lo_open = v, is_open
            else:
                hi, hi_open = v, is_open
    if lo is not None and hi is not None:
        return f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '≥'} {lo}"
    if hi is not None:
        return f"{'<' if hi_open else '≤'} {hi}"
    return ""


def config_error(cls: type[BaseModel], exc: ValidationError, flags: Mapping[str, str]) -> InputError:
    """The first validation error of `exc` as one line that names the flag (or key) and the fix."""
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else (err.get("ctx") or {}).get("at", "")
    shown = flags.get(name, name)
    value = err.get("input")
    bounded = err["type"] in ("greater_than", "greater_than_equal", "less_than", "less_than_equal")
    allowed = value_range(cls, name) if name in cls.model_fields else ""
    if isinstance(value, float) and not math.isfinite(value):
        return InputError(f"{shown} {value} is not a finite number", f"give {shown} a number in {allowed}")
    if bounded:
        return InputError(
            f"{shown} {value} is outside {allowed}" if allowed else f"{shown} {value} is out of range",
            f"give {shown} a value in {allowed}" if allowed else "see --help",
        )
    field = cls.model_fields.get(name)
    hint = field.description if field is not None and field.description else "see --help"
    return InputError(f"{shown}: {err['msg']}" + (f" (got {value!r})" if "input" in err else ""), hint)
