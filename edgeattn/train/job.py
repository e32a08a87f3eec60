"""`train_checkpoint`, the library behind `edgeattn train`: build, train (optionally distil), evaluate, save."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgeattn.checkpoint import ModelHandle, load_checkpoint, save_checkpoint
from edgeattn.data import DataConfig, load_split
from edgeattn.errors import InputError
from edgeattn.evaluation import Accuracy, evaluate
from edgeattn.models import ModelConfig, model_spec
from edgeattn.result import StageResult
from edgeattn.train.config import TrainConfig
from edgeattn.train.loop import fit, seed_everything
from edgeattn.train.lora import add_lora, lora_plan, merge_lora, parameter_counts
from edgeattn.train.start import load_init, with_classes


class TrainResult(StageResult):
    """What training produced: the model, where it was saved, its accuracy and the loss curve."""

    model: str
    input_size: int
    val: Accuracy
    epochs: list[dict[str, Any]]
    seconds: float
    out: str
    # Parameters the optimizer updated, of all the model had while training (LoRA: adapters + head).
    params: dict[str, Any] = {}
    init: str | None = None
    lora: int | None = None


def train_checkpoint(
    model: str | None,
    data: str,
    out: Path | str,
    config: TrainConfig | None = None,
    *,
    input_size: int | None = None,
    options: dict | None = None,
    seed: int = 0,
    data_options: DataConfig | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train zoo model `model` (or fine-tune `config.init`, with LoRA when `config.lora`) on `data`,
    save it to `out`. `config` (default `TrainConfig()`) with any of its fields replaced by
    `overrides` (e.g. `epochs=2`)."""
    cfg = TrainConfig.build(config, **overrides)
    if cfg.init is None and model is None:
        raise InputError("no model to train", "give --model NAME (from scratch) or --init CKPT (fine-tune)")
    if cfg.lora is not None and cfg.init is None:
        raise InputError(
            "--lora adapts trained weights, and no --init checkpoint was given",
            "give --init CKPT (e.g. from `edgeattn import` or `edgeattn train`), or drop --lora",
        )
    init = load_init(cfg.init, model, input_size, options) if cfg.init is not None else None
    size = init.config.input_size if init else int(input_size or model_spec(str(model)).default_input_size)
    train_set = load_split(data, "train", size, data_options)
    val_set = load_split(data, "val", size, data_options)
    seed_everything(seed)  # the initial weights too: same seed, same checkpoint bytes
    if init is not None and cfg.init is not None:
        handle = with_classes(init, train_set.num_classes, cfg.init)
    else:
        handle = ModelHandle.new(ModelConfig(str(model), train_set.num_classes, size, dict(options or {})))
    name = handle.config.name
    teacher_module = None
    if cfg.teacher is not None:
        t = load_checkpoint(cfg.teacher)
        if t.config.num_classes != train_set.num_classes or t.config.input_size != size:
            raise InputError(
                f"teacher {cfg.teacher} has {t.config.num_classes} classes at {t.config.input_size}px, student {train_set.num_classes} at {size}px",
                "use a teacher trained on the same data and input size",
            )
        teacher_module = t.module
    trained = handle.module
    if cfg.lora is not None:
        plan = lora_plan(handle.module, train_set.num_classes, name)
        trained = add_lora(handle.module, plan, cfg.lora, cfg.lora_alpha)
    params = parameter_counts(trained)
    start = time.perf_counter()
    log = fit(
        trained,
        train_set,
        handle.input_spec,
        cfg,
        seed=seed,
        teacher=teacher_module,
        description=f"{'LoRA fine-tune' if cfg.lora else 'fine-tune' if cfg.init else 'train'} {name}",
    )
    seconds = time.perf_counter() - start
    if cfg.lora is not None:
        handle.module = merge_lora(trained)  # prune/quantize/export see the plain architecture
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
        **({"init": str(cfg.init)} if cfg.init else {}),
        **(
            {"lora": {"rank": cfg.lora, "alpha": cfg.lora_alpha or 2.0 * cfg.lora, "params": params}}
            if cfg.lora
            else {}
        ),
    )
    save_checkpoint(handle, out)
    return TrainResult(
        model=name,
        input_size=size,
        val=Accuracy(**val),
        epochs=log,
        seconds=seconds,
        out=str(out),
        params=params,
        init=str(cfg.init) if cfg.init else None,
        lora=cfg.lora,
    )
