"""The step and stage types, and the `STAGES` registry the runner walks in order (no if/elif chain).

A stage (train, prune, ...) turns the run state into steps once the stages before it are done, so a
stage only plans work for what really exists (e.g. int8 exports for each quantized checkpoint). A step
is the unit of caching: its config and input files make its key, `run` does the work and returns a
JSON summary, and `collect` records that summary in the run state — the same way whether the summary
is fresh or comes from the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeattn.pipeline.state import RunState
from edgeattn.registry import Registry


@dataclass
class Step:
    id: str  # unique in a run, e.g. "export/onnx-int8-ptq"; its cache record is named after it
    stage: str
    title: str  # what a person reads while it runs
    config: dict[str, Any]
    run: Callable[[], dict[str, Any]]
    collect: Callable[[dict[str, Any]], None]
    inputs: dict[str, Path] = field(default_factory=dict)  # files whose content goes into the key
    data: dict[str, str] = field(default_factory=dict)  # data specs (fingerprinted into the key)
    outputs: list[Path] = field(default_factory=list)  # what it writes (verified on cache hits)

    @property
    def name(self) -> str:
        return self.id.split("/", 1)[-1]


@dataclass(frozen=True)
class Stage:
    name: str
    order: int  # stages run in ascending order (registration order is import order, which linters sort)
    description: str
    plan: Callable[[RunState], list[Step]]


STAGES: Registry[Stage] = Registry("pipeline stage")


def stage(
    name: str, order: int, description: str
) -> Callable[[Callable[[RunState], list[Step]]], Callable[[RunState], list[Step]]]:
    """Register a planning function as the stage `name`, run at position `order`."""

    def add(plan: Callable[[RunState], list[Step]]) -> Callable[[RunState], list[Step]]:
        STAGES.register(name, Stage(name, order, description, plan))
        return plan

    return add
