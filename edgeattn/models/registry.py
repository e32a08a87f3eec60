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
    _load_families()
    return MODELS.get(name)


def all_model_specs() -> list[ModelSpec]:
    _load_families()
    return [MODELS.get(n) for n in MODELS.names()]


_LOADED = False


def _load_families() -> None:
    """Import the family modules (they register themselves) on first use, keeping import cheap."""
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from edgeattn.models import timm_family, vgg_family  # noqa: F401
