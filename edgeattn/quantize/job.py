"""`quantize_checkpoint`: FP32 checkpoint -> INT8 checkpoint (PTQ, optional budget, optional QAT).

Data discipline: calibration uses only the calibration split, QAT only the training split, and every
reported top-1 (and the --max-drop budget) is measured on the evaluation split, which neither sees.
Nothing is written until the model is final (per-epoch QAT checkpoints aside, each complete).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from edgeattn.checkpoint import ModelHandle, load_checkpoint, save_checkpoint
from edgeattn.data import DataConfig, FileSet, ImageSet, load_split, load_unlabeled
from edgeattn.device.config import DeviceConfig, device_config
from edgeattn.device.device import open_device
from edgeattn.errors import InputError
from edgeattn.evaluation import evaluate
from edgeattn.fileio import check_writable
from edgeattn.models import model_spec
from edgeattn.models.fold import fold_for_inference
from edgeattn.quantize.checkpoint import KIND, nncf_config_of
from edgeattn.quantize.config import QuantizeConfig
from edgeattn.quantize.distributed import DistContext, barrier, init_distributed, shutdown
from edgeattn.quantize.placement import (
    PLACEMENTS,
    PlacementPolicy,
    Plan,
    build_plan,
    choose_policy,
    compute_layers,
    match_patterns,
)
from edgeattn.quantize.ptq import TRANSFORMER_FAMILIES, PTQOptions, model_graph, quantize_module
from edgeattn.quantize.qat import run_qat
from edgeattn.quantize.result import BudgetInfo, QATInfo, QuantizeReport, StageTop1
from edgeattn.quantize.summary import layer_rows, model_sizes
from edgeattn.quantize.timing import PLACEMENT_TIMERS, timer_name
from edgeattn.quantize.timing_size import TimingSize
from edgeattn.quantize.unify import unify_requantizers

if TYPE_CHECKING:
    from edgeattn.device.device import Device
    from edgeattn.quantize.result import GroupDecision, MeasuredPlacement
    from edgeattn.quantize.timing import PlacementTimer

GROUP_SHARE = 0.8  # of --placement-budget for timing the groups; the rest times INT8 against FP32


def quantize_checkpoint(
    ckpt: Path | str,
    data: str,
    out: Path | str,
    config: QuantizeConfig | None = None,
    *,
    seed: int = 0,
    data_options: DataConfig | None = None,
    device: DeviceConfig | str | None = None,
    device_label: str | None = None,
    **overrides: Any,
) -> QuantizeReport:
    """Quantize `ckpt` to INT8 for `config.runtime`; writes `out` (rank 0 only under torchrun) and
    returns the report: top-1 FP32/PTQ/QAT, which layers are INT8 and why others are not, sizes.

    `config` (default `QuantizeConfig()`) with any of its fields replaced by `overrides`, e.g.
    `qat=True, epochs=2`. `config.calib` (a folder of unlabeled images) replaces the calibration
    split; `data_options` say how images are read (workers, class map, bad files). `device` (a
    config or URL) is the machine that will run the model: `--cpu-int8 auto` detects its CPU and
    `--placement measured` times there (placement_timer auto); None or `local` is this machine.
    `device_label` is how reports name it (a recipe's device name).
    """
    cfg = QuantizeConfig.build(config, **overrides)
    ckpt, out = Path(ckpt), Path(out)
    where = None if device is None else device_config(device)
    on_device = where is not None and not where.in_process  # plain `local` is this process
    timer = timer_name(cfg.placement_timer, on_device)
    runtime = PLACEMENTS.get(cfg.runtime).name  # unknown runtime: one line, before any work
    if cfg.placement == "measured":
        PLACEMENT_TIMERS.get(timer)  # unknown timer: one line, before any work
        if runtime != "onnxruntime":
            on = " (on a --device too: its agent times onnxruntime sessions only)" if on_device else ""
            raise InputError(
                f"--placement measured times the model on onnxruntime{on}, not {runtime}",
                f"drop --placement measured (the {runtime} placement rules then decide), or quantize for --runtime onnxruntime",
            )
    check_writable(out)
    with contextlib.ExitStack() as stack:
        dev = stack.enter_context(open_device(where, device_label)) if on_device else None
        policy = _policy_for(cfg, dev)  # reaches the device (its facts) before any work
        policy.check_preset(cfg.preset)
        placement_timer = None
        if cfg.placement == "measured":
            placement_timer = PLACEMENT_TIMERS.get(timer)(dev)  # `device` without --device: one line
            if dev is not None and timer == "device":
                dev.require_module("numpy")
                dev.require_module("onnxruntime")
            close = getattr(placement_timer, "close", None)
            if close is not None:
                stack.callback(close)  # the device timer's agent and shipped candidates
        ctx = init_distributed() if cfg.qat else None
        try:
            return _run(
                ckpt, data, out, cfg, policy, ctx, seed, data_options or DataConfig(), placement_timer
            )
        finally:
            shutdown(ctx)


def _policy_for(cfg: QuantizeConfig, dev: Device | None) -> PlacementPolicy:
    """The placement rules for the CPU that runs the model: the device's (from its facts) with
    `--device` and `--cpu-int8 auto`, else this machine's or the given kind."""
    if dev is None or cfg.cpu_int8 != "auto" or not PLACEMENTS.get(cfg.runtime).cpu_variants:
        return choose_policy(cfg.runtime, cfg.cpu_int8)
    return choose_policy(cfg.runtime, "auto", dev.facts().get("cpu") or {}, owner=f"device {dev.name}")


def _load_fp32(ckpt: Path) -> ModelHandle:
    handle = load_checkpoint(ckpt)
    if handle.kind == KIND:
        raise InputError(
            f"{ckpt} is already quantized (int8)", "quantize the FP32 (or pruned) checkpoint it came from"
        )
    if handle.kind != "fp32":
        raise InputError(f"{ckpt} is a {handle.kind} checkpoint", "quantize an FP32 (or pruned) checkpoint")
    return handle


def _split(data: str, split: str, handle: ModelHandle, options: DataConfig) -> ImageSet | FileSet:
    images = load_split(data, split, handle.config.input_size, options)
    if images.num_classes != handle.config.num_classes:
        raise InputError(
            f"{data} has {images.num_classes} classes but the model predicts {handle.config.num_classes}",
            "calibrate on the data set the model was trained for",
        )
    if len(images) == 0:
        raise InputError(f"the {split} split of {data} is empty", "add images to it")
    return images


def _calibration_set(
    data: str, cfg: QuantizeConfig, handle: ModelHandle, options: DataConfig, seed: int
) -> Any:
    """`calib_size` images of `--calib DIR` (unlabeled) or else of the data set's calibration split."""
    if cfg.calib is not None:
        return load_unlabeled(cfg.calib, options).subset(cfg.calib_size, seed=seed)
    return _split(data, "calib", handle, options).subset(cfg.calib_size, seed=seed)


def _inputs(images: ImageSet | FileSet, handle: ModelHandle, what: str) -> torch.Tensor:
    x = images.to_model_input(handle.input_spec)
    if not torch.isfinite(x).all():
        raise InputError(f"the {what} data contain NaN or infinite values", "clean the data set")
    return x


def _run(
    ckpt: Path,
    data: str,
    out: Path,
    cfg: QuantizeConfig,
    policy: PlacementPolicy,
    ctx: DistContext | None,
    seed: int,
    options: DataConfig,
    placement_timer: PlacementTimer | None = None,
) -> QuantizeReport:
    start = time.perf_counter()
    torch.manual_seed(seed)
    handle = fold_for_inference(_load_fp32(ckpt))  # exact; the INT8 config records the folded structure
    names = list(compute_layers(handle.module))
    ignored = list(cfg.ignored)
    unmatched = [p for p, hit in match_patterns(names, ignored).items() if not hit]
    if unmatched:
        raise InputError(
            f"--ignored {', '.join(unmatched)} matches no layer",
            f"layers look like: {', '.join(names[:4])} …",
        )
    calib = _inputs(_calibration_set(data, cfg, handle, options, seed), handle, "calibration")
    val_set = _split(data, "val", handle, options)

    def top1(module: torch.nn.Module) -> float:  # streamed: the val split is never held in memory
        return evaluate(module, val_set, handle.input_spec)["top1"]

    fp32 = handle.module.eval()
    fp32_top1 = top1(fp32)
    spec = model_spec(handle.config.name)
    preset = policy.resolve_preset(cfg.preset)
    rules = policy
    if cfg.placement == "measured":  # every conv and linear layer is a candidate; timing decides
        timer_at = getattr(getattr(placement_timer, "device", None), "name", None)
        policy = replace(
            policy,
            min_macs_per_output=0,
            description="measured: every conv and linear layer a candidate, INT8 kept only where it was "
            f"faster in the whole model on onnxruntime {'here' if timer_at is None else 'on device ' + timer_at} "
            f"({policy.name}/{policy.variant} formats)",
        )
    opts = PTQOptions(
        preset=preset,
        smooth_quant=cfg.smooth_quant,
        bias_correction=cfg.bias_correction,
        transformer=spec.transformer or spec.family in TRANSFORMER_FAMILIES,
        weights_7bit=policy.weights_7bit,
        signed_activations=policy.signed_per_tensor_activations,
    )

    measured_float: dict[str, str] = {}
    graph = model_graph(fp32, calib[:1])  # traced once: plans, unify and the measured groups use it

    def requantize(keep_float: dict[str, str]) -> tuple[Plan, torch.nn.Module]:
        plan = build_plan(fp32, graph, policy, ignored, {**measured_float, **keep_float})
        qmodel = quantize_module(fp32, calib, plan, opts)
        unify_requantizers(qmodel, graph)
        return plan, qmodel

    plan, qmodel = requantize({})
    measured_start = time.perf_counter()
    timing = TimingSize.of(handle, cfg.placement_size)  # where --placement measured times (if it does)
    groups = None
    timer = None
    if cfg.placement == "measured":
        from edgeattn.quantize.measured import measure_groups

        timer = placement_timer or PLACEMENT_TIMERS.get("local")(None)
        found = measure_groups(
            timing.int8(qmodel),
            graph,
            plan,
            timing.shape,
            timer,
            cfg.placement_budget * GROUP_SHARE,
            rules,
        )
        groups = found.groups
        measured_float.update(found.keep_float)
        if measured_float:  # ship the graph that was timed (see without_float_groups)
            from edgeattn.quantize.measured import without_float_groups

            qmodel = without_float_groups(qmodel, graph, plan, set(found.keep_float))
            plan = build_plan(fp32, graph, policy, ignored, measured_float)
    ptq_top1 = top1(qmodel)
    budget = None
    if cfg.max_drop is not None:
        from edgeattn.quantize.sensitivity import fit_budget

        budget = fit_budget(
            fp32, qmodel, plan, calib[:256], top1, fp32_top1, cfg.max_drop, requantize, first_top1=ptq_top1
        )
        plan, qmodel, ptq_top1 = budget.plan, budget.module, budget.top1
    measured = None
    if groups is not None and timer is not None:
        measured = _verdict(
            timing.fp32(fp32), timing.int8(qmodel), timing.shape, timer, groups, cfg, measured_start
        )

    qat_log: list[dict] = []
    qat_top1 = None
    if cfg.qat:
        train_set = _split(data, "train", handle, options)
        base = _quantized_handle(handle, qmodel, plan, policy, preset)

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
            epochs=cfg.epochs,
            lr=cfg.lr,
            batch_size=cfg.batch_size,
            seed=seed,
            ctx=ctx,
            on_epoch_end=on_epoch,
        )
        qat_top1 = qat_log[-1]["val_top1"]

    report = QuantizeReport(
        checkpoint=str(ckpt),
        out=str(out),
        model=handle.config.name,
        runtime=policy.name,
        placement=policy.description,
        policy=policy.label,
        policy_reason=policy.reason,
        preset=preset,
        data=data,
        calibration_images=len(calib),
        eval_images=len(val_set),
        top1=StageTop1(fp32=fp32_top1, ptq=ptq_top1, qat=qat_top1),
        layers=layer_rows(plan),
        int8_layers=len(plan.int8_layers),
        float_layers=len(plan.layers) - len(plan.int8_layers),
        size=model_sizes(fp32, plan),
        measured=measured,
        max_drop=None
        if budget is None
        else BudgetInfo(
            budget=cfg.max_drop,
            kept_float=budget.float_layers,
            ranking=[{"layer": n, "logits_mse": e} for n, e in budget.ranking],
        ),
        qat=QATInfo(
            epochs=qat_log, distributed=None if ctx is None else {"world": ctx.world, "backend": ctx.backend}
        )
        if cfg.qat
        else None,
        seconds=round(time.perf_counter() - start, 1),
    )
    final = _quantized_handle(handle, qmodel, plan, policy, preset)
    final.metrics = {
        "val": {"top1": qat_top1 if cfg.qat else ptq_top1},
        "fp32_top1": fp32_top1,
        "ptq_top1": ptq_top1,
        "qat_top1": qat_top1,
        "data": data,
    }
    final.with_step(
        "quantize",
        data=data,
        runtime=policy.name,
        placement=policy.label,
        placement_reason=policy.reason,
        weights_7bit=policy.weights_7bit,
        preset=preset,
        placement_mode=cfg.placement,
        recommended=None if measured is None else measured.recommended,
        calib_size=len(calib),
        qat=cfg.qat,
        epochs=cfg.epochs if cfg.qat else 0,
        max_drop=cfg.max_drop,
        ignored=ignored,
        seed=seed,
        top1=report.top1.to_dict(),
    )
    if ctx is None or ctx.is_main:
        save_checkpoint(final, out)
    barrier(ctx)
    return report


def _verdict(
    fp32: torch.nn.Module,
    qmodel: torch.nn.Module,
    shape: tuple[int, ...],
    timer: PlacementTimer,
    groups: list[GroupDecision],
    cfg: QuantizeConfig,
    started: float,
) -> MeasuredPlacement:
    """Time the final INT8 model against FP32 with what is left of the budget (at least its share)."""
    from edgeattn.quantize.onnx_export import exportable_copy, quantized_onnx
    from edgeattn.quantize.verdict import final_verdict, fp32_onnx

    left = cfg.placement_budget - (time.perf_counter() - started)
    seconds = max(cfg.placement_budget * (1 - GROUP_SHARE), left)
    from edgeattn.progress import make_progress

    int8 = quantized_onnx(exportable_copy(qmodel), shape, dynamic_batch=True)  # as exported
    reference = fp32_onnx(fp32, shape)
    with make_progress() as progress:
        task = progress.add_task("INT8 vs FP32", total=None, status="interleaved rounds")
        return final_verdict(
            reference,
            int8,
            timer,
            seconds,
            groups,
            cfg.placement_budget,
            started,
            on_round=lambda n: progress.update(task, completed=n),
        )


def _quantized_handle(
    handle: ModelHandle, qmodel: torch.nn.Module, plan: Plan, policy: PlacementPolicy, preset: str
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
            "placement": policy.name,  # the runtime whose Q/DQ passes and checks the export applies
            "placement_policy": policy.label,
            "placement_reason": policy.reason,
            "preset": preset,
            "layers": [row.to_dict() for row in layer_rows(plan)],
        },
    )


def epoch_checkpoint(out: Path, epoch: int) -> Path:
    """Where QAT writes the checkpoint of one epoch (beside the final one)."""
    return out.with_name(f"{out.stem}.qat-epoch{epoch}{out.suffix or '.pt'}")
