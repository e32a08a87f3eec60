"""The measured placement's verdict: FP32 against the final INT8 model, timed interleaved on the
placement's timer. INT8 is recommended only when its speedup's 95 % interval lies above 1.0, so the
artifact edgeattn recommends is never measurably slower than FP32 on that CPU."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import onnx
from torch import nn

from edgeattn.onnx.graph import DEFAULT_OPSET
from edgeattn.onnx.torch_export import torch_to_onnx
from edgeattn.quantize.measured import DEPLOYED_BATCH
from edgeattn.quantize.result import GroupDecision, MeasuredPlacement
from edgeattn.quantize.timing import PlacementTimer, paired_ratio


def fp32_onnx(module: nn.Module, input_shape: tuple[int, ...]) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory(prefix="edgeattn-fp32-") as tmpdir:
        path = Path(tmpdir) / "fp32.onnx"
        torch_to_onnx(
            module.eval(), path, input_shape=input_shape, opset=DEFAULT_OPSET, dynamic_batch=DEPLOYED_BATCH
        )
        return onnx.load(str(path))


def final_verdict(
    fp32: onnx.ModelProto,
    int8: onnx.ModelProto,
    timer: PlacementTimer,
    seconds: float,
    groups: list[GroupDecision],
    budget: float,
    started: float,
    on_round: Callable[[int], None] | None = None,
) -> MeasuredPlacement:
    """FP32 vs the final INT8 model, interleaved: INT8 is recommended only when the 95 % interval of
    its speedup lies above 1.0; otherwise the FP32 artifact is what this CPU should run."""
    times = timer.time([fp32, int8], seconds, min_rounds=10, max_rounds=200, on_round=on_round)
    ratio = paired_ratio(times[0], times[1])
    fp32_ms, int8_ms = statistics.median(times[0]), statistics.median(times[1])
    span = f"{ratio.median:.2f}x (95 % interval {ratio.low:.2f}–{ratio.high:.2f}, {len(times[0])} rounds)"
    if ratio.above_one:
        recommended, verdict = "int8", f"INT8 is faster than FP32 here: {span}; deploy the INT8 artifact"
    else:
        recommended = "fp32"
        slower = "slower than" if ratio.high < 1.0 else "not shown faster than"
        verdict = f"INT8 is {slower} FP32 on this CPU: {span}; the recommended artifact for this CPU is FP32"
    return MeasuredPlacement(
        timer=timer.describe(),
        input_shape=[int(d.dim_value) or 1 for d in fp32.graph.input[0].type.tensor_type.shape.dim],
        budget_s=budget,
        seconds=round(time.perf_counter() - started, 1),
        groups=groups,
        fp32_ms=round(fp32_ms, 3),
        int8_ms=round(int8_ms, 3),
        **ratio.report_fields(),
        rounds=len(times[0]),
        recommended=recommended,
        verdict=verdict,
    )
