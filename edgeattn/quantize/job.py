"""`quantize_checkpoint`: FP32 checkpoint -> INT8 checkpoint (PTQ, optional budget, optional QAT).

Data discipline: calibration uses only the calibration split, QAT only the training split, and every
reported top-1 (and the --max-drop budget) is measured on the evaluation split, which neither sees.
Nothing is written until the model is final (per-epoch QAT checkpoints aside, each complete).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from edgeattn.checkpoint import ModelHandle, load_checkpoint, save_checkpoint
from edgeattn.data import load_split
from edgeattn.data.imageset import ImageSet
from edgeattn.errors import InputError
from edgeattn.fileio import check_writable
from edgeattn.models import model_spec
from edgeattn.quantize.checkpoint import KIND, nncf_config_of
from edgeattn.quantize.distributed import DistContext, barrier, init_distributed, shutdown
from edgeattn.quantize.placement import PLACEMENTS, Plan, compute_layers, match_patterns
from edgeattn.quantize.ptq import PRESETS, TRANSFORMER_FAMILIES, PTQOptions, plan_for, quantize_module
from edgeattn.quantize.qat import QATOptions, run_qat
from edgeattn.quantize.summary import layer_rows, model_sizes


def quantize_checkpoint(
    ckpt: Path,
    data: str,
    out: Path,
    *,
    qat: bool = False,
    epochs: int = 2,
    calib_size: int = 300,
    preset: str = "performance",
    smooth_quant: bool | None = None,
    bias_correction: bool = True,
    ignored: list[str] | tuple[str, ...] = (),
    max_drop: float | None = None,
    seed: int = 0,
    runtime: str = "onnxruntime",
    lr: float = 1e-4,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Quantize `ckpt` to INT8 for `runtime`; writes `out` (rank 0 only under torchrun) and returns
    the summary: top-1 FP32/PTQ/QAT, which layers are INT8 and why others are not, sizes."""
    ckpt, out = Path(ckpt), Path(out)
    _check_options(qat, epochs, calib_size, preset, max_drop, lr, batch_size)
    policy = PLACEMENTS.get(runtime)
    check_writable(out)
    ctx = init_distributed() if qat else None
    try:
        return _run(
            ckpt,
            data,
            out,
            ctx,
            policy,
            qat,
            epochs,
            calib_size,
            preset,
            smooth_quant,
            bias_correction,
            list(ignored),
            max_drop,
            seed,
            lr,
            batch_size,
        )
    finally:
        shutdown(ctx)


def _check_options(
    qat: bool, epochs: int, calib_size: int, preset: str, max_drop: float | None, lr: float, batch_size: int
) -> None:
    if calib_size < 1:
        raise InputError(
            f"--calib-size {calib_size} leaves nothing to calibrate on",
            "use --calib-size 1 or more (default 300)",
        )
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}", f"use one of: {', '.join(PRESETS)}")
    if qat and epochs < 1:
        raise InputError(f"--epochs {epochs} with --qat trains nothing", "use --epochs 1 or more")
    if max_drop is not None and (not math.isfinite(max_drop) or max_drop < 0):
        raise InputError(
            f"--max-drop {max_drop} is impossible",
            "give the accepted top-1 loss in points, e.g. --max-drop 1.0",
        )
    if qat and (not math.isfinite(lr) or lr <= 0 or batch_size < 1):
        raise InputError(
            "QAT needs a positive learning rate and batch size", "e.g. --lr 1e-4 --batch-size 64"
        )


def _load_fp32(ckpt: Path) -> ModelHandle:
    handle = load_checkpoint(ckpt)
    if handle.kind == KIND:
        raise InputError(
            f"{ckpt} is already quantized (int8)", "quantize the FP32 (or pruned) checkpoint it came from"
        )
    if handle.kind != "fp32":
        raise InputError(f"{ckpt} is a {handle.kind} checkpoint", "quantize an FP32 (or pruned) checkpoint")
    return handle


def _split(data: str, split: str, handle: ModelHandle) -> ImageSet:
    images = load_split(data, split, handle.config.input_size)
    if images.num_classes != handle.config.num_classes:
        raise InputError(
            f"{data} has {images.num_classes} classes but the model predicts {handle.config.num_classes}",
            "calibrate on the data set the model was trained for",
        )
    if len(images) == 0:
        raise InputError(f"the {split} split of {data} is empty", "add images to it")
    return images


def _inputs(images: ImageSet, handle: ModelHandle, what: str) -> torch.Tensor:
    x = images.to_model_input(handle.input_spec)
    if not torch.isfinite(x).all():
        raise InputError(f"the {what} data contain NaN or infinite values", "clean the data set")
    return x


def _run(
    ckpt,
    data,
    out,
    ctx: DistContext | None,
    policy,
    qat,
    epochs,
    calib_size,
    preset,
    smooth_quant,
    bias_correction,
    ignored,
    max_drop,
    seed,
    lr,
    batch_size,
) -> dict[str, Any]:
    start = time.perf_counter()
    torch.manual_seed(seed)
    handle = _load_fp32(ckpt)
    names = list(compute_layers(handle.module))
    unmatched = [p for p, hit in match_patterns(names, ignored).items() if not hit]
    if unmatched:
        raise InputError(
            f"--ignored {', '.join(unmatched)} matches no layer",
            f"layers look like: {', '.join(names[:4])} …",
        )
    calib_set = _split(data, "calib", handle).subset(calib_size, seed=seed)
    calib = _inputs(calib_set, handle, "calibration")
    val_set = _split(data, "val", handle)
    val_x = _inputs(val_set, handle, "evaluation")

    def top1(module: torch.nn.Module) -> float:
        from edgeattn.train import accuracy_report, predict_logits

        return accuracy_report(predict_logits(module, val_x), val_set.labels)["top1"]

    fp32 = handle.module.eval()
    fp32_top1 = top1(fp32)
    family = model_spec(handle.config.name).family
    opts = PTQOptions(
        preset=preset,
        smooth_quant=smooth_quant,
        bias_correction=bias_correction,
        transformer=family in TRANSFORMER_FAMILIES,
        weights_7bit=policy.weights_7bit,
    )

    def requantize(keep_float: dict[str, str]) -> tuple[Plan, torch.nn.Module]:
        plan = plan_for(fp32, calib[:1], policy, ignored, keep_float)
        return plan, quantize_module(fp32, calib, plan, opts)

    plan, qmodel = requantize({})
    ptq_top1 = top1(qmodel)
    budget = None
    if max_drop is not None:
        from edgeattn.quantize.sensitivity import fit_budget

        budget = fit_budget(
            fp32, qmodel, plan, calib[:256], top1, fp32_top1, max_drop, requantize, first_top1=ptq_top1
        )
        plan, qmodel, ptq_top1 = budget.plan, budget.module, budget.top1

    qat_log: list[dict] = []
    qat_top1 = None
    if qat:
        train_set = _split(data, "train", handle)
        base = _quantized_handle(handle, qmodel, plan, policy.name, preset)

        def on_epoch(epoch: int) -> dict:
            result = {"val_top1": top1(qmodel)}
            if ctx is None or ctx.is_main:
                base.metrics = {"val_top1": result["val_top1"], "qat_epoch": epoch}
                save_checkpoint(base, epoch_checkpoint(out, epoch))
            return result

        qat_log = run_qat(
            qmodel,
            fp32,
            train_set,
            handle.input_spec,
            QATOptions(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed),
            ctx,
            on_epoch,
        )
        qat_top1 = qat_log[-1]["val_top1"]

    summary = {
        "checkpoint": str(ckpt),
        "out": str(out),
        "model": handle.config.name,
        "runtime": policy.name,
        "placement": policy.description,
        "preset": preset,
        "data": data,
        "calibration_images": len(calib),
        "eval_images": len(val_set),
        "top1": {"fp32": fp32_top1, "ptq": ptq_top1, "qat": qat_top1},
        "layers": layer_rows(plan),
        "int8_layers": len(plan.int8_layers),
        "float_layers": len(plan.layers) - len(plan.int8_layers),
        "size": model_sizes(fp32, plan),
        "max_drop": None
        if budget is None
        else {
            "budget": max_drop,
            "kept_float": budget.float_layers,
            "ranking": [{"layer": n, "logits_mse": e} for n, e in budget.ranking],
        },
        "qat": {
            "epochs": qat_log,
            "distributed": None if ctx is None else {"world": ctx.world, "backend": ctx.backend},
        }
        if qat
        else None,
        "seconds": round(time.perf_counter() - start, 1),
    }
    final = _quantized_handle(handle, qmodel, plan, policy.name, preset)
    final.metrics = {
        "val": {"top1": qat_top1 if qat else ptq_top1},
        "fp32_top1": fp32_top1,
        "ptq_top1": ptq_top1,
        "qat_top1": qat_top1,
        "data": data,
    }
    final.with_step(
        "quantize",
        data=data,
        runtime=policy.name,
        preset=preset,
        calib_size=len(calib),
        qat=qat,
        epochs=epochs if qat else 0,
        max_drop=max_drop,
        ignored=list(ignored),
        seed=seed,
        seconds=summary["seconds"],
        top1=summary["top1"],
    )
    if ctx is None or ctx.is_main:
        save_checkpoint(final, out)
    barrier(ctx)
    return summary


def _quantized_handle(
    handle: ModelHandle, qmodel: torch.nn.Module, plan: Plan, runtime: str, preset: str
) -> ModelHandle:
    return ModelHandle(
        module=qmodel,
        config=handle.config,
        input_spec=handle.input_spec,
        kind=KIND,
        history=list(handle.history),
        metrics={},
        extra={
            "nncf_config": nncf_config_of(qmodel),
            "placement": runtime,
            "preset": preset,
            "layers": layer_rows(plan),
        },
    )


def epoch_checkpoint(out: Path, epoch: int) -> Path:
    """Where QAT writes the checkpoint of one epoch (beside the final one)."""
    return out.with_name(f"{out.stem}.qat-epoch{epoch}{out.suffix or '.pt'}")
