"""The model a training run starts from: a fresh zoo model, or the weights of a checkpoint (`--init`).

Fine-tuning an imported model on a new data set usually changes the class count; every weight whose
shape still fits is kept and only the layers whose shapes changed (the classifier) start anew, so a
checkpoint trained on 1000 classes fine-tunes on 10 without any family-specific head code.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgeattn.checkpoint import ModelHandle, load_checkpoint
from edgeattn.errors import InputError
from edgeattn.models import ModelConfig, build_model


def load_init(path: Path, model: str | None, input_size: int | None, options: dict | None) -> ModelHandle:
    """The FP32 checkpoint at `path`; --model/--input-size/--option may only repeat what it fixes."""
    handle = load_checkpoint(path)
    cfg = handle.config
    if handle.kind != "fp32":
        raise InputError(
            f"--init {path} is a {handle.kind} checkpoint", "fine-tune the FP32 checkpoint, then quantize it"
        )
    for flag, given, own in (("--model", model, cfg.name), ("--input-size", input_size, cfg.input_size)):
        if given is not None and given != own:
            raise InputError(
                f"{flag} {given} contradicts --init {path.name}, a {cfg.name} at {cfg.input_size}px",
                f"drop {flag} (the checkpoint fixes the architecture)",
            )
    if options:
        raise InputError(
            f"--option {options} cannot change the architecture of --init {path.name}", "drop --option"
        )
    return handle


def with_classes(handle: ModelHandle, num_classes: int, path: Path) -> ModelHandle:
    """`handle` for `num_classes`: itself when they agree, else rebuilt with every weight that fits
    copied and the rest (the head) new (drawn from torch's generator, seeded by the caller)."""
    if handle.config.num_classes == num_classes:
        return handle
    cfg = dataclasses.replace(handle.config, num_classes=num_classes)
    module = build_model(cfg)
    old, new = handle.module.state_dict(), module.state_dict()
    fresh = [k for k in new if k not in old or old[k].shape != new[k].shape]
    if any(k not in old for k in fresh) or len(fresh) > 4:  # weight + bias of at most two heads
        raise InputError(
            f"{path.name} does not rebuild for {num_classes} classes (new weights: {', '.join(fresh[:4])})",
            "fine-tune on data with the checkpoint's classes",
        )
    module.load_state_dict({k: v for k, v in old.items() if k not in fresh}, strict=False)
    return ModelHandle(
        module=module.eval(),
        config=ModelConfig.from_dict(cfg.to_dict()),
        input_spec=handle.input_spec,
        history=list(handle.history),
        extra=dict(handle.extra),
    )
