"""Recipes and the end-to-end pipeline (`edgeattn run RECIPE`, `edgeattn recipe check|new`).

A YAML recipe (`schema.py`) says what a deployment needs; `run_recipe` runs the registered stages
(`stages/`: train, prune, quantize, export, validate, bench) in order, each step cached by the content
of its inputs (`cache.py`), and writes `exported/<recipe>/manifest.json`, `report.md` and `junit.xml`.
"""

from edgeattn.pipeline.execute import StepFailed, run_recipe
from edgeattn.pipeline.recipe import LoadedRecipe, Problem, RecipeError, check_recipe, load_recipe
from edgeattn.pipeline.schema import Recipe, target_precisions
from edgeattn.pipeline.state import RunResult

__all__ = [
    "LoadedRecipe",
    "Problem",
    "Recipe",
    "RecipeError",
    "RunResult",
    "StepFailed",
    "check_recipe",
    "load_recipe",
    "run_recipe",
    "target_precisions",
]
