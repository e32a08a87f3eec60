"""The model zoo: one registry entry per architecture name users type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from edgeattn.models.config import InputSpec, ModelConfig
from edgeattn.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    build: Callable[[ModelConfig], nn.Module]
    default_input_size: int
    input_multiple: int  # input sides must be a multiple of this
    input_spec: Callable[[ModelConfig], InputSpec]
    description: str = ""
    default_options: dict = field(default_factory=dict)


MODELS: Registry[ModelSpec] = Registry("model")


def model_spec(name: str) -> ModelSpec:
    return MODELS.get(name)


def all_model_specs() -> list[ModelSpec]:
    return [MODELS.get(n) for n in MODELS.names()]
