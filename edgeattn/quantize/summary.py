"""What a quantized model is made of: per-layer precision (with the reason) and its size."""

from __future__ import annotations

from torch import nn

from edgeattn.quantize.placement import Plan
from edgeattn.quantize.result import LayerRow, WeightSizes


def layer_rows(plan: Plan) -> list[LayerRow]:
    return [
        LayerRow(
            layer=p.name,
            type=p.type,
            params=p.params,
            precision="int8" if p.int8 else "float",
            reason=p.reason,
            ops=list(p.op_names),
        )
        for p in plan.layers
    ]


def model_sizes(module: nn.Module, plan: Plan) -> WeightSizes:
    """Bytes of the weights as FP32 and as deployed INT8 (int8 weights + fp32 per-channel scales,
    int32 biases; every other tensor stays fp32)."""
    fp32 = sum(p.numel() for p in module.parameters()) * 4
    modules = dict(module.named_modules())
    saved = 0
    int8_params = 0
    for layer in plan.int8_layers:
        m = modules.get(layer.name)
        if m is None:
            continue
        w = m.weight.numel()
        int8_params += w
        saved += w * 4 - (w + m.weight.shape[0] * 4)  # int8 values + one fp32 scale per output channel
    int8 = fp32 - saved
    total_params = max(1, sum(p.numel() for p in module.parameters()))
    return WeightSizes(
        fp32_bytes=int(fp32),
        int8_bytes=int(int8),
        ratio=round(fp32 / max(1, int8), 2),
        int8_weight_share=round(100.0 * int8_params / total_params, 1),
    )
