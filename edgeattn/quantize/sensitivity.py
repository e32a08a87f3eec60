"""The accuracy budget (`--max-drop`): keep the costliest layers in float until the INT8 model fits.

Like NNCF's quantize_with_accuracy_control (which its torch backend does not offer): rank the INT8
layers by how much the model's logits move back toward FP32 when that one layer is reverted to float
(on the calibration inputs), then revert them in that order, checking top-1 on the held-out
evaluation split after each, until the drop is within budget. The final model is re-quantized with
those layers excluded, so the placement (and the exported ONNX) stays consistent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from edgeattn.errors import InputError
from edgeattn.evaluation import predict_logits
from edgeattn.progress import make_progress
from edgeattn.quantize.placement import LayerPlan, Plan


@dataclass
class BudgetResult:
    module: nn.Module
    plan: Plan
    top1: float
    float_layers: list[str] = field(default_factory=list)
    ranking: list[tuple[str, float]] = field(default_factory=list)  # (layer, logits MSE when reverted)


def layer_quantizers(model: nn.Module, layer: LayerPlan) -> list[nn.Module]:
    """The NNCF quantizers that belong to one layer: weight, input and fusion-output quantizers."""
    from nncf.torch.function_hook.hook_storage import decode_hook_name
    from nncf.torch.function_hook.wrapper import get_hook_storage
    from nncf.torch.quantization.layers import BaseQuantizer

    mine = []
    for name, module in get_hook_storage(model).named_hooks():
        if not isinstance(module, BaseQuantizer):
            continue
        kind, op, port = decode_hook_name(name)
        if (kind == "pre_hooks" and op in layer.op_names and port in (0, 1)) or (
            kind == "post_hooks" and op in layer.output_points
        ):
            mine.append(module)
    return mine


@contextlib.contextmanager
def reverted(quantizers: list[nn.Module]) -> Iterator[None]:
    for q in quantizers:
        q.disable_quantization()
    try:
        yield
    finally:
        for q in quantizers:
            q.enable_quantization()


def rank_layers(
    model: nn.Module, plan: Plan, inputs: torch.Tensor, reference: torch.Tensor
) -> list[tuple[str, float]]:
    """INT8 layers sorted most-sensitive first (smallest logits error when that layer alone is float)."""
    scores = []
    with make_progress() as progress:
        task = progress.add_task("rank layer sensitivity", total=len(plan.int8_layers), status="")
        for layer in plan.int8_layers:
            with reverted(layer_quantizers(model, layer)):
                err = float(torch.mean((predict_logits(model, inputs) - reference) ** 2))
            scores.append((layer.name, err))
            progress.update(task, advance=1, status=layer.name)
    return sorted(scores, key=lambda s: s[1])


def fit_budget(
    fp32: nn.Module,
    quantized: nn.Module,
    plan: Plan,
    rank_inputs: torch.Tensor,
    val_top1: Callable[[nn.Module], float],
    fp32_top1: float,
    max_drop: float,
    requantize: Callable[[dict[str, str]], tuple[Plan, nn.Module]],
    first_top1: float | None = None,
) -> BudgetResult:
    """Revert the most sensitive layers to float until top-1 is within `max_drop` of FP32."""
    top1 = val_top1(quantized) if first_top1 is None else first_top1
    if fp32_top1 - top1 <= max_drop:
        return BudgetResult(quantized, plan, top1)
    ranking = rank_layers(quantized, plan, rank_inputs, predict_logits(fp32, rank_inputs))
    by_name = {layer.name: layer for layer in plan.int8_layers}
    chosen: list[str] = []
    reverted_q: list[nn.Module] = []
    try:
        for name, _ in ranking:
            if len(chosen) == len(ranking) - 1:
                break  # reverting every layer would leave no INT8 model at all
            chosen.append(name)
            qs = layer_quantizers(quantized, by_name[name])
            for q in qs:
                q.disable_quantization()
            reverted_q += qs
            if fp32_top1 - val_top1(quantized) <= max_drop:
                break
    finally:
        for q in reverted_q:
            q.enable_quantization()
    # Re-quantize without the chosen layers; add the next-ranked ones while re-quantizing misses.
    order = [name for name, _ in ranking]
    while True:
        keep = {
            n: f"kept float by --max-drop {max_drop:g} (sensitivity rank {order.index(n) + 1})"
            for n in chosen
        }
        new_plan, module = requantize(keep)
        top1 = val_top1(module)
        drop = fp32_top1 - top1
        if drop <= max_drop:
            return BudgetResult(module, new_plan, top1, list(chosen), ranking)
        if len(chosen) >= len(order) - 1:
            raise InputError(
                f"--max-drop {max_drop:g} cannot be met: with {len(chosen)} of {len(order)} layers in float top-1 still drops {drop:.2f} points",
                "allow a larger --max-drop, calibrate on more data (--calib-size) or use --qat",
            )
        chosen.append(order[len(chosen)])
