"""`train_checkpoint`, the library behind `edgeattn train`: build, train (optionally distil), evaluate, save."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgeattn.checkpoint import ModelHandle, load_checkpoint, save_checkpoint
from edgeattn.data import load_split
from edgeattn.errors import InputError
from edgeattn.evaluation import Accuracy, evaluate
from edgeattn.models import ModelConfig, model_spec
from edgeattn.result import StageResult
from edgeattn.train.config import TrainConfig
from edgeattn.train.loop import fit, seed_everything


class TrainResult(StageResult):
    """What training produced: the model, where it was saved, its accuracy and the loss curve."""

    model: str
    input_size: int
    val: Accuracy
    epochs: list[dict[str, Any]]
    seconds: float
    out: str


def train_checkpoint(
    model: str,
    data: str,
    out: Path | str,
    config: TrainConfig | None = None,
    *,
    input_size: int | None = None,
    options: dict | None = None,
    seed: int = 0,
    **overrides: Any,
) -> TrainResult:
    """Train zoo model `model` on `data`, save it to `out`. `config` (default `TrainConfig()`) with any
    of its fields replaced by `overrides` (e.g. `epochs=2`)."""
    cfg = TrainConfig.build(config, **overrides)
    spec = model_spec(model)
    size = int(input_size or spec.default_input_size)
    train_set = load_split(data, "train", size)
    val_set = load_split(data, "val", size)
    seed_everything(seed)  # the initial weights too: same seed, same checkpoint bytes
    handle = ModelHandle.new(ModelConfig(model, train_set.num_classes, size, dict(options or {})))
    teacher_module = None
    if cfg.teacher is not None:
        t = load_checkpoint(cfg.teacher)
        if t.config.num_classes != train_set.num_classes or t.config.input_size != size:
            raise InputError(
                f"teacher {cfg.teacher} has {t.config.num_classes} classes at {t.config.input_size}px, student {train_set.num_classes} at {size}px",
                "use a teacher trained on the same data and input size",
            )
        teacher_module = t.module
    start = time.perf_counter()
    log = fit(
        handle.module,
        train_set,
        handle.input_spec,
        cfg,
        seed=seed,
        teacher=teacher_module,
        description=f"train {model}",
    )
    seconds = time.perf_counter() - start
    val = evaluate(handle.module, val_set, handle.input_spec)
    handle.metrics = {"val": val, "data": data}
    handle.with_step(
        "train",
        data=data,
        classes=list(train_set.classes),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=seed,
        teacher=str(cfg.teacher) if cfg.teacher else None,
        val_top1=val["top1"],
    )
    save_checkpoint(handle, out)
    return TrainResult(
        model=model, input_size=size, val=Accuracy(**val), epochs=log, seconds=seconds, out=str(out)
    )
