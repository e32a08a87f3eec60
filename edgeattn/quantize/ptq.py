"""Post-training quantization with NNCF, restricted to the placement the target runtime runs fast.

NNCF computes the ranges (MinMax on the calibration split), SmoothQuant for the linear layers of
transformers and fast bias correction; edgeattn tells it which layers to quantize (every other op is
in NNCF's ignored scope) and then adds the conv-output quantizers the runtime needs to fuse int8
convs (see placement.py), calibrated on the same data with the rest of the model already quantized.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

import torch
from torch import nn

from edgeattn.errors import InputError
from edgeattn.quantize.backend import calibration_dataset, import_nncf
from edgeattn.quantize.config import Preset
from edgeattn.quantize.placement import Plan

PRESETS = get_args(Preset)
# Families whose blocks are transformer encoders: NNCF's TRANSFORMER model type (SmoothQuant, patterns).
TRANSFORMER_FAMILIES = {"mobilevit", "efficientformer"}


@dataclass
class PTQOptions:
    preset: str = "performance"
    smooth_quant: bool | None = None  # None: NNCF's default for the model type
    bias_correction: bool = True
    transformer: bool = False
    batch_size: int = 16
    weights_7bit: bool = (
        False  # NNCF OverflowFix: 7-bit weights for int8 kernels that saturate (AVX2 w/o VNNI)
    )
    signed_activations: bool = False  # force signed, per-tensor activation quantizers (TensorRT)


def model_graph(module: nn.Module, example: torch.Tensor) -> Any:
    """NNCF's graph of `module` (traced on a copy, so the module itself stays unwrapped)."""
    import copy

    import_nncf()
    from nncf.torch.function_hook import wrap_model
    from nncf.torch.function_hook.nncf_graph.nncf_graph_builder import build_nncf_graph

    with torch.no_grad():
        return build_nncf_graph(wrap_model(copy.deepcopy(module).eval()), example)


def quantize_module(module: nn.Module, calib: torch.Tensor, plan: Plan, opts: PTQOptions) -> nn.Module:
    """NNCF PTQ of a copy of `module` on `calib` (preprocessed inputs) with `plan`'s placement."""
    nncf = import_nncf()
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
        OverflowFix,
        QuantizationParameters,
    )

    if opts.preset not in PRESETS:
        raise InputError(f"unknown preset {opts.preset!r}", f"use one of: {', '.join(PRESETS)}")
    if not plan.int8_layers:
        raise InputError(
            "no layer is left to quantize", "loosen --ignored / --max-drop (every layer would stay float)"
        )
    sq = opts.smooth_quant if opts.smooth_quant is not None else opts.transformer
    advanced = AdvancedQuantizationParameters(
        overflow_fix=OverflowFix.ENABLE if opts.weights_7bit else OverflowFix.DISABLE,
        disable_bias_correction=not opts.bias_correction,
        smooth_quant_alphas=AdvancedSmoothQuantParameters()
        if sq
        else AdvancedSmoothQuantParameters(convolution=-1, matmul=-1),
        # NNCF may choose per-channel activation scales, which TensorRT does not take. (Signedness cannot
        # be forced here: NNCF's HW config refuses the constraint; see force_signed below.)
        activations_quantization_params=QuantizationParameters(per_channel=False)
        if opts.signed_activations
        else None,
    )
    preset = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}[
        opts.preset
    ]
    quantized = nncf.quantize(
        module.eval(),
        calibration_dataset(calib, opts.batch_size),
        preset=preset,
        model_type=nncf.ModelType.TRANSFORMER if (opts.transformer or sq) else None,
        subset_size=-(-len(calib) // opts.batch_size),  # NNCF counts dataset items: our batches
        ignored_scope=nncf.IgnoredScope(names=plan.ignored_ops, validate=False),
        advanced_parameters=advanced,
    )
    add_output_quantizers(quantized, plan.output_points, calib, opts)
    if opts.signed_activations:
        force_signed(quantized)
    return quantized.eval()


def force_signed(model: nn.Module) -> int:
    """Make every symmetric quantizer signed; returns how many changed.

    NNCF makes an activation quantizer unsigned when its calibrated range starts at 0 (after a ReLU):
    it exports as uint8, which TensorRT's parser rejects (8.6, 10.0-10.1) or reads as int8 (later),
    clipping the upper half of the range. Signed with the same scale covers [-s, s] in 256 steps,
    which is what TensorRT computes; the torch model then fake-quantizes exactly like the engine.
    """
    from nncf.torch.function_hook.wrapper import get_hook_storage
    from nncf.torch.quantization.layers import SymmetricQuantizer

    changed = 0
    for _, module in get_hook_storage(model).named_hooks():
        if isinstance(module, SymmetricQuantizer) and not module.signed:
            module.signed = True
            changed += 1
    return changed


# ------------------------------------------------------------------------------ output quantizers
class _RangeRecorder(nn.Module):
    """A temporary NNCF hook that records the min/max of the tensor it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.lo = float("inf")
        self.hi = float("-inf")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.lo = min(self.lo, float(x.detach().min()))
        self.hi = max(self.hi, float(x.detach().max()))
        return x


def existing_quantizer_keys(model: nn.Module) -> set[tuple[str, str, int]]:
    from nncf.torch.function_hook.hook_storage import decode_hook_name
    from nncf.torch.function_hook.wrapper import get_hook_storage
    from nncf.torch.quantization.layers import BaseQuantizer

    return {
        decode_hook_name(n) for n, m in get_hook_storage(model).named_hooks() if isinstance(m, BaseQuantizer)
    }


@torch.no_grad()
def add_output_quantizers(
    model: nn.Module, points: list[str], calib: torch.Tensor, opts: PTQOptions
) -> list[str]:
    """Quantize the output of each op in `points` that NNCF left in float; returns the ops it added."""
    from nncf.torch.function_hook.wrapper import register_post_function_hook

    have = existing_quantizer_keys(model)
    todo = [p for p in dict.fromkeys(points) if ("post_hooks", p, 0) not in have]
    if not todo:
        return []
    recorders = {p: _RangeRecorder() for p in todo}
    handles = [register_post_function_hook(model, p, 0, r) for p, r in recorders.items()]
    model.eval()
    for i in range(0, len(calib), opts.batch_size):
        model(calib[i : i + opts.batch_size])
    for h in handles:
        h.remove()
    for p, r in recorders.items():
        quantizer = make_activation_quantizer(r.lo, r.hi, opts.preset, signed=opts.signed_activations or None)
        register_post_function_hook(model, p, 0, quantizer)
    return todo


def make_activation_quantizer(lo: float, hi: float, preset: str, signed: bool | None = None) -> nn.Module:
    """A per-tensor 8-bit NNCF activation quantizer covering [lo, hi] (symmetric or asymmetric)."""
    from nncf.common.quantization.structs import QuantizationScheme
    from nncf.torch.quantization.layers import AsymmetricQuantizer, PTQuantizerSpec, SymmetricQuantizer

    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if not (hi > lo):
        hi = lo + 1e-6
    if preset == "mixed":
        spec = PTQuantizerSpec(8, QuantizationScheme.ASYMMETRIC, None, False, False, (1,), False)
        q = AsymmetricQuantizer(spec)
        q.input_low.data.fill_(lo)
        q._input_range_param_storage.data.fill_(hi - lo)
    else:
        signed = lo < 0 if signed is None else signed
        spec = PTQuantizerSpec(8, QuantizationScheme.SYMMETRIC, signed, False, False, (1,), False)
        q = SymmetricQuantizer(spec)
        q.signed = signed
        q._scale_param_storage.data.fill_(max(abs(lo), abs(hi)))
    return q
