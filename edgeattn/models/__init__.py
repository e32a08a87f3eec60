"""The model zoo: build any registered architecture from a `ModelConfig`, inspect its heads, count it."""

from __future__ import annotations

from torch import nn

from edgeattn.errors import InputError
from edgeattn.models import (  # noqa: F401  (each registers itself)
    efficientformer_v2_adapter,
    head_adapters,
    timm_family,
    timm_source,
    token_adapters,
    torchvision_source,
    torchvision_swin_adapter,
    vgg_family,
)
from edgeattn.models.config import InputSpec, ModelConfig
from edgeattn.models.registry import (
    MODEL_SOURCES,
    MODELS,
    ModelSpec,
    all_model_specs,
    is_model_name,
    model_spec,
)

__all__ = [
    "MODELS",
    "MODEL_SOURCES",
    "InputSpec",
    "ModelConfig",
    "ModelSpec",
    "all_model_specs",
    "build_model",
    "input_spec_for",
    "is_model_name",
    "model_spec",
    "validate_config",
]


def validate_config(cfg: ModelConfig) -> ModelSpec:
    spec = model_spec(cfg.name)
    if cfg.input_size <= 0 or cfg.input_size % spec.input_multiple:
        raise InputError(
            f"input size {cfg.input_size} does not suit {cfg.name}",
            f"use a multiple of {spec.input_multiple} (e.g. {max(spec.input_multiple, cfg.input_size // spec.input_multiple * spec.input_multiple)})",
        )
    if cfg.num_classes < 2:
        raise InputError(
            f"num_classes={cfg.num_classes} is too small", "a classifier needs at least 2 classes"
        )
    return spec


def build_model(cfg: ModelConfig) -> nn.Module:
    """Build the architecture `cfg` describes, with random weights, in eval mode.

    A pruned config (`heads_kept`) gets its reduced attention shapes here, before weights load.
    """
    spec = validate_config(cfg)
    try:
        model = spec.build(cfg)
    except (TypeError, ValueError, AssertionError) as exc:
        raise InputError(
            f"cannot build {cfg.name} with options {cfg.options}: {exc}", "check the model options"
        ) from exc
    if cfg.heads_kept:
        from edgeattn.models.heads import apply_heads_kept

        apply_heads_kept(model, cfg.heads_kept)
    return model.eval()


def input_spec_for(cfg: ModelConfig) -> InputSpec:
    return model_spec(cfg.name).input_spec(cfg)
