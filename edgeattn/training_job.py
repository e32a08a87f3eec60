"""Library entry point behind `edgeattn train`: build, train (optionally distil), evaluate, save."""

from __future__ import annotations

import time
from pathlib import Path

from edgeattn.checkpoint import ModelHandle, load_checkpoint, save_checkpoint
from edgeattn.data import load_split
from edgeattn.errors import InputError
from edgeattn.models import ModelConfig, model_spec
from edgeattn.train import TrainConfig, evaluate, fit


def train_checkpoint(
    model: str,
    data: str,
    out: Path | str,
    input_size: int | None = None,
    options: dict | None = None,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 2e-3,
    teacher: Path | str | None = None,
    seed: int = 0,
) -> dict:
    spec = model_spec(model)
    size = int(input_size or spec.default_input_size)
    train_set = load_split(data, "train", size)
    val_set = load_split(data, "val", size)
    handle = ModelHandle.new(ModelConfig(model, train_set.num_classes, size, dict(options or {})))
    teacher_module = None
    if teacher is not None:
        t = load_checkpoint(teacher)
        if t.config.num_classes != train_set.num_classes or t.config.input_size != size:
            raise InputError(
                f"teacher {teacher} has {t.config.num_classes} classes at {t.config.input_size}px, student {train_set.num_classes} at {size}px",
                "use a teacher trained on the same data and input size",
            )
        teacher_module = t.module
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    start = time.perf_counter()
    log = fit(
        handle.module, train_set, handle.input_spec, cfg, teacher=teacher_module, description=f"train {model}"
    )
    seconds = time.perf_counter() - start
    val = evaluate(handle.module, val_set, handle.input_spec)
    handle.metrics = {"val": val, "data": data}
    handle.with_step(
        "train",
        data=data,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        teacher=str(teacher) if teacher else None,
        seconds=round(seconds, 1),
        val_top1=val["top1"],
    )
    save_checkpoint(handle, out)
    return {
        "model": model,
        "input_size": size,
        "val": val,
        "epochs": log,
        "seconds": seconds,
        "out": str(out),
    }
