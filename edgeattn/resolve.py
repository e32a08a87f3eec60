"""Turning what a user typed (a zoo name or a checkpoint path) into a model handle."""

from __future__ import annotations

from pathlib import Path

from edgeattn.checkpoint import ModelHandle, load_checkpoint
from edgeattn.errors import InputError
from edgeattn.models import ModelConfig, model_spec
from edgeattn.models.registry import MODELS, _load_families


def handle_from(
    name_or_path: str, input_size: int | None = None, num_classes: int = 1000, options: dict | None = None
) -> ModelHandle:
    """A registered model name builds a fresh model; anything else must be a checkpoint file."""
    _load_families()
    if name_or_path in MODELS:
        spec = model_spec(name_or_path)
        cfg = ModelConfig(
            name_or_path, num_classes, input_size or spec.default_input_size, dict(options or {})
        )
        return ModelHandle.new(cfg)
    path = Path(name_or_path)
    if not path.exists() and path.suffix == "":
        MODELS.get(name_or_path)  # raises "unknown model ... did you mean"
    handle = load_checkpoint(path)
    if input_size and input_size != handle.config.input_size:
        raise InputError(
            f"{path} was built for {handle.config.input_size}x{handle.config.input_size} inputs, not {input_size}",
            "drop --input-size or retrain at that size",
        )
    return handle
