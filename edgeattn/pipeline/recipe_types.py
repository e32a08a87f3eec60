"""What checking a recipe produces: `Problem`s (key path, line, message), the `RecipeError` that
carries them, and the `LoadedRecipe` that the pipeline runs (paths resolved against the recipe's folder)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeattn.errors import InputError
from edgeattn.pipeline.schema import Recipe

Loc = tuple[str | int, ...]


@dataclass
class Problem:
    """One thing wrong with a recipe: where (key path, line) and what."""

    loc: Loc
    message: str
    line: int | None = None

    @property
    def path(self) -> str:
        return format_loc(self.loc)

    def __str__(self) -> str:
        where = self.path or "(top level)"
        return f"{where}{f' (line {self.line})' if self.line else ''}: {self.message}"


class RecipeError(InputError):
    """A recipe that cannot be run (exit 2); `problems` lists everything that is wrong."""

    def __init__(self, file: Path, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        more = (
            f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
            if len(problems) > 1
            else ""
        )
        super().__init__(
            f"recipe {file}: {problems[0]}{more}",
            f"fix the recipe (`edgeattn recipe check {file}` lists every problem)" if more else None,
        )


@dataclass
class LoadedRecipe:
    """A checked recipe plus what was resolved from outside it (absolute paths, the run's name)."""

    recipe: Recipe
    file: Path
    text: str
    name: str
    base_dir: Path
    checkpoint_config: dict[str, Any] | None = None  # config stored in model.checkpoint, when given
    warnings: list[str] = field(default_factory=list)

    def path(self, p: Path | str | None) -> Path | None:
        """A recipe path, resolved against the recipe's folder."""
        if p is None:
            return None
        p = Path(p).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def device(self, name: str) -> Any:
        """The `DeviceConfig` a bench/validate `device:` entry names: `local`, a name from `devices:`
        (its ssh_config resolved against the recipe's folder), or an inline URL."""
        from edgeattn.device import DeviceConfig

        section = self.recipe.devices.get(name)
        if section is not None:
            values = section.model_dump()
            if section.ssh_config is not None:
                values["ssh_config"] = self.path(section.ssh_config)
            return DeviceConfig.build(**values)
        return DeviceConfig.build(url=name)

    def data_spec(self, spec: str) -> str:
        """A data spec with its path (if any) resolved against the recipe's folder."""
        if spec.startswith("builtin:"):
            return spec
        suffix = "@all" if spec.endswith("@all") else ""
        return str(self.path(spec.removesuffix("@all"))) + suffix


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + ("validate" if part == "validate_" else str(part))
    return out
