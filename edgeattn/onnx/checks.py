"""The gates an exported graph must pass: a valid, shape-inferable model; edgeattn's input/output names;
for INT8, explicit standard Q/DQ that onnxruntime, TensorRT and OpenVINO all load."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from edgeattn.errors import GateFailure
from edgeattn.onnx.graph import (
    DQ_OP,
    INPUT_NAME,
    OUTPUT_NAME,
    Q_OP,
    QDQ_MIN_OPSET,
    nonstandard_ops,
    op_histogram,
    opset_of,
)


def check_and_infer(model: onnx.ModelProto) -> onnx.ModelProto:
    """Full `onnx.checker` check, then strict shape inference; returns the shape-inferred model."""
    onnx.checker.check_model(model, full_check=True)
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def check_qdq_graph(model: onnx.ModelProto, where: str) -> dict[str, Any]:
    """An INT8 graph must be explicit standard Q/DQ that onnxruntime, TensorRT and OpenVINO all load."""
    odd = nonstandard_ops(model)
    if odd:
        raise GateFailure(
            f"{where} contains non-standard ops {', '.join(odd[:4])}",
            "re-quantize: edgeattn writes only standard Q/DQ",
        )
    ops = op_histogram(model)
    if not ops.get(Q_OP) or not ops.get(DQ_OP):
        raise GateFailure(
            f"{where} has no QuantizeLinear/DequantizeLinear nodes",
            "re-quantize the checkpoint with `edgeattn quantize`",
        )
    opset = opset_of(model)
    if opset < QDQ_MIN_OPSET:
        raise GateFailure(
            f"{where} uses opset {opset}, too old for per-channel Q/DQ",
            f"export with --opset {QDQ_MIN_OPSET} or newer",
        )
    scale_sizes = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    per_channel = sum(
        1 for n in model.graph.node if n.op_type == DQ_OP and scale_sizes.get(n.input[1], 1) > 1
    )
    return {
        "quantize_linear": ops[Q_OP],
        "dequantize_linear": ops[DQ_OP],
        "per_channel_dq": per_channel,
    }


def check_io_names(model: onnx.ModelProto, where: str) -> None:
    inputs = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    outputs = [o.name for o in model.graph.output]
    if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
        raise GateFailure(
            f"{where} has inputs {inputs} and outputs {outputs}, not ['{INPUT_NAME}'] / ['{OUTPUT_NAME}']",
            "re-export it",
        )
