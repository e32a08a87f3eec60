"""Loading and checking a recipe file: YAML → `Recipe`, every problem named by key path and line.

Checking happens in two passes, both before any work: the schema (types, ranges, unknown keys, target
× precision) and then the facts outside the file (`recipe_facts`: the checkpoint and data exist, the
model name is in the zoo, int8 exports have a quantize section, runtimes exist). Both report all
problems at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from edgeattn.errors import InputError
from edgeattn.pipeline.recipe_facts import fact_problems
from edgeattn.pipeline.recipe_types import LoadedRecipe, Loc, Problem, RecipeError, format_loc
from edgeattn.pipeline.schema import Recipe

__all__ = [
    "LoadedRecipe",
    "Problem",
    "RecipeError",
    "check_recipe",
    "format_loc",
    "load_recipe",
    "parse_yaml",
]


# --------------------------------------------------------------------------------------------- YAML
class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (YAML would silently keep the last one)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice (first on line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _line_of(root: yaml.Node | None, loc: Loc) -> int | None:
    """1-based line of the deepest node along `loc` in the composed YAML tree."""
    node, line = root, None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        part = "validate" if part == "validate_" else part
        nxt = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == str(part):
                    nxt, line = v, k.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
            line = nxt.start_mark.line + 1
        node = nxt
    return line


def parse_yaml(file: Path) -> tuple[dict[str, Any], str, yaml.Node | None]:
    if not file.exists():
        raise InputError(f"recipe {file} does not exist", "check the path (recipes live in recipes/)")
    if file.is_dir():
        raise InputError(f"{file} is a folder", "give a recipe .yaml file")
    text = file.read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506  (a SafeLoader subclass)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"recipe {file} is not valid YAML{where}: {what}", "fix the YAML syntax") from None
    if data is None:
        raise InputError(
            f"recipe {file} is empty", "start from `edgeattn recipe new --model NAME --target onnx`"
        )
    if not isinstance(data, dict):
        raise InputError(
            f"recipe {file} must be a mapping of sections (model, data, ...)", "see `edgeattn recipe new`"
        )
    return data, text, root


# ------------------------------------------------------------------------------------------ schema
def _schema_problems(exc: ValidationError, root: yaml.Node | None) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc: Loc = tuple(p for p in err["loc"] if p not in ("function-after", "function-before"))
        ctx = err.get("ctx") or {}
        if "at" in ctx:
            at = ctx["at"]
            loc = loc + tuple(_split_at(at))
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "missing (required)"
        elif "input" in err and not isinstance(err["input"], dict | list) and str(err["input"]) not in msg:
            msg = f"{msg} (got {err['input']!r})"
        problems.append(Problem(loc, msg, _line_of(root, loc)))
    return problems


def _split_at(at: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in str(at).replace("]", "").split("["):
        if piece.isdigit():
            parts.append(int(piece))
        elif piece:
            parts.append(piece)
    return parts


# --------------------------------------------------------------------------------------------- API
def check_recipe(file: Path | str) -> tuple[LoadedRecipe | None, list[Problem]]:
    """Every problem in a recipe (empty list: runnable). YAML syntax errors still raise InputError."""
    file = Path(file)
    data, text, root = parse_yaml(file)
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        return None, _schema_problems(exc, root)
    loaded = LoadedRecipe(
        recipe=recipe, file=file, text=text, name=recipe.name or file.stem, base_dir=file.resolve().parent
    )
    problems = fact_problems(loaded)
    for p in problems:
        p.line = p.line or _line_of(root, p.loc)
    return loaded, problems


def load_recipe(file: Path | str) -> LoadedRecipe:
    """A checked recipe, or `RecipeError` naming every problem (nothing has been run yet)."""
    loaded, problems = check_recipe(file)
    if problems or loaded is None:
        raise RecipeError(Path(file), problems)
    return loaded
