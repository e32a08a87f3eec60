"""Graph passes that turn an exported fake-quant ONNX into the Q/DQ form a runtime fuses.

The torch exporter writes every NNCF quantizer as a QuantizeLinear/DequantizeLinear pair at exactly
the point the torch model quantizes, but in a literal form: weights as float initializers followed by
QuantizeLinear, linear weights transposed after their DequantizeLinear, BatchNorm left after the
quantized conv, float biases. Runtimes only fuse the canonical pattern (int8 weight initializer ->
DequantizeLinear -> Conv/MatMul, BN folded, int32 bias for onnxruntime's QLinearConv), so these
passes rewrite to it. Every rewrite is exact in real arithmetic (BN folding rescales per-channel
weight scales; a negative BN scale flips the sign of the int8 values), so the ONNX still computes
what the torch model computes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgeattn.onnx.graph import DQ_OP, Q_OP, GraphView, attr, remove_dead, set_attr
from edgeattn.onnx.qdq_motion import drop_requantize, hoist_quantize, shapes_of_quantized, sink_dequantize
from edgeattn.registry import Registry


def _dq_params(
    view: GraphView, node: onnx.NodeProto
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int] | None:
    """(int values, scale, zero point, axis) of a DequantizeLinear of initializers, else None."""
    if node is None or node.op_type != DQ_OP:
        return None
    arrays = [view.array(t) for t in node.input[:3]] + ([None] if len(node.input) < 3 else [])
    if arrays[0] is None or arrays[1] is None:
        return None
    zp = arrays[2] if arrays[2] is not None else np.zeros_like(arrays[1], dtype=arrays[0].dtype)
    return arrays[0], arrays[1], zp, int(attr(node, "axis", 1))


# ------------------------------------------------------------------------------------------ passes
def constants_to_initializers(view: GraphView) -> int:
    """Constant nodes become initializers; Identity nodes of initializers are bypassed."""
    changed = 0
    for node in list(view.graph.node):
        if (
            node.op_type == "Constant"
            and attr(node, "value") is not None
            and node.output[0] not in view.outputs
        ):
            view.set_array(node.output[0], numpy_helper.to_array(attr(node, "value")))
            view.graph.node.remove(node)
            changed += 1
    view.refresh()
    for node in list(view.graph.node):
        if node.op_type == "Identity" and node.input[0] in view.inits and node.output[0] not in view.outputs:
            view.rename_tensor(node.output[0], node.input[0])
            view.graph.node.remove(node)
            changed += 1
    view.refresh()
    return changed


def fold_weight_quantize(view: GraphView) -> int:
    """QuantizeLinear(float initializer) -> int8/uint8 initializer (ONNX rounding: half to even)."""
    changed = 0
    for node in list(view.graph.node):
        if node.op_type != Q_OP:
            continue
        x, scale = view.array(node.input[0]), view.array(node.input[1])
        zp = view.array(node.input[2]) if len(node.input) > 2 else None
        if x is None or scale is None or (len(node.input) > 2 and zp is None):
            continue
        zp = zp if zp is not None else np.zeros((), np.uint8)
        axis = int(attr(node, "axis", 1)) % x.ndim
        shape = [1] * x.ndim
        if scale.ndim == 1 and scale.size > 1:
            shape[axis] = -1
        info = np.iinfo(zp.dtype)
        q = np.rint(x / scale.reshape(shape)) + zp.astype(np.int64).reshape(shape)
        view.set_array(node.output[0], np.clip(q, info.min, info.max).astype(zp.dtype))
        view.graph.node.remove(node)
        changed += 1
    view.refresh()
    return changed


def fold_transposed_weights(view: GraphView) -> int:
    """Transpose(DequantizeLinear(int8 initializer)) -> DequantizeLinear(transposed initializer)."""
    changed = 0
    for node in list(view.graph.node):
        if node.op_type != "Transpose":
            continue
        dq = view.producer.get(node.input[0])
        params = _dq_params(view, dq)
        if params is None or view.sole_consumer(dq.output[0]) is not node:
            continue
        q, scale, _, axis = params
        perm = list(attr(node, "perm", list(range(q.ndim))[::-1]))
        new_q = view.unique(dq.input[0] + "_T")
        view.set_array(new_q, np.transpose(q, perm))
        dq.input[0] = new_q
        if scale.ndim == 1 and scale.size > 1:
            set_attr(dq, "axis", perm.index(axis % q.ndim))
        view.rename_tensor(node.output[0], dq.output[0])
        view.graph.node.remove(node)
        view.refresh()
        changed += 1
    return changed


def fold_batchnorm(view: GraphView) -> int:
    """Conv(DQ(int8 W)) -> BatchNormalization  =>  Conv(DQ(±int8 W, scale*|k|), bias'), k = g/sqrt(v+e)."""
    changed = 0
    for conv in list(view.graph.node):
        if conv.op_type != "Conv":
            continue
        bn = view.sole_consumer(conv.output[0])
        if bn is None or bn.op_type != "BatchNormalization" or len(bn.output) != 1:
            continue
        dq = view.producer.get(conv.input[1])
        params = _dq_params(view, dq)
        bn_params = [view.array(t) for t in bn.input[1:5]]
        if params is None or any(p is None for p in bn_params) or len(view.consumers[dq.output[0]]) != 1:
            continue
        q, scale, zp, axis = params
        if np.any(zp != 0) or (scale.size > 1 and axis % q.ndim != 0):
            continue
        gamma, beta, mean, var = (p.astype(np.float64) for p in bn_params)
        k = gamma / np.sqrt(var + float(attr(bn, "epsilon", 1e-5)))
        cout = q.shape[0]
        scale_c = np.broadcast_to(scale.astype(np.float64).reshape(-1), (cout,))
        sign = np.where(k < 0, -1, 1)
        info = np.iinfo(q.dtype)
        new_q = np.clip(
            q.astype(np.int64) * sign.reshape(-1, *([1] * (q.ndim - 1))), info.min, info.max
        ).astype(q.dtype)
        bias = (
            view.array(conv.input[2]).astype(np.float64)
            if len(conv.input) > 2 and conv.input[2]
            else np.zeros(cout)
        )
        names = {s: view.unique(f"{conv.input[1]}_bn_{s}") for s in ("q", "scale", "zp", "bias")}
        view.set_array(names["q"], new_q)
        view.set_array(names["scale"], (scale_c * np.abs(k)).astype(np.float32))
        view.set_array(names["zp"], np.zeros(cout, dtype=q.dtype))
        view.set_array(names["bias"], ((bias - mean) * k + beta).astype(np.float32))
        dq.input[:] = [names["q"], names["scale"], names["zp"]]
        set_attr(dq, "axis", 0)
        if len(conv.input) > 2:
            conv.input[2] = names["bias"]
        else:
            conv.input.append(names["bias"])
        view.rename_tensor(bn.output[0], conv.output[0])
        view.graph.node.remove(bn)
        view.refresh()
        changed += 1
    return changed


def quantize_biases(view: GraphView) -> int:
    """Float bias of a Conv/Gemm with Q/DQ input and weight -> int32 DQ (scale = s_x * s_w), which
    onnxruntime needs to fuse the node into one QLinearConv / QGemm kernel."""
    changed = 0
    for node in list(view.graph.node):
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 3 or node.input[2] not in view.inits:
            continue
        x_node = view.producer.get(node.input[0])
        w_params = _dq_params(view, view.producer.get(node.input[1]))
        if x_node is None or x_node.op_type != DQ_OP or w_params is None:
            continue
        sx = view.array(x_node.input[1])
        if sx is None or sx.size != 1:
            continue
        bias = view.array(node.input[2]).astype(np.float64)
        sw = np.broadcast_to(w_params[1].astype(np.float64).reshape(-1), bias.shape)
        scale = float(sx.reshape(())) * sw
        q = np.rint(bias / np.maximum(scale, 1e-30))
        if np.abs(q).max(initial=0) >= 2**31 - 1:
            continue
        names = {s: view.unique(f"{node.input[2]}_i32_{s}") for s in ("q", "scale", "zp")}
        view.set_array(names["q"], q.astype(np.int32))
        view.set_array(names["scale"], scale.astype(np.float32))
        view.set_array(names["zp"], np.zeros(bias.shape, np.int32))
        out = view.unique(f"{node.input[2]}_dq")
        view.graph.node.append(
            helper.make_node(DQ_OP, [names["q"], names["scale"], names["zp"]], [out], name=out, axis=0)
        )
        node.input[2] = out
        view.refresh()
        changed += 1
    return changed


GraphPass = Callable[[GraphView], int]
COMMON_PASSES: list[GraphPass] = [
    constants_to_initializers,
    fold_weight_quantize,
    fold_transposed_weights,
    fold_batchnorm,
]
# Moving per-tensor Q/DQ across reshapes, transposes, splits and max-pools (qdq_motion.py) lets
# onnxruntime run them on uint8 and fuse residual adds into QLinearAdd.
MOTION_PASSES: list[GraphPass] = [shapes_of_quantized, sink_dequantize, hoist_quantize, drop_requantize]
# Runtime -> the passes its Q/DQ form needs (TensorRT keeps biases in float; it quantizes them itself).
RUNTIME_PASSES: Registry[list[GraphPass]] = Registry("runtime for INT8 ONNX")
RUNTIME_PASSES.register("onnxruntime", [*COMMON_PASSES, quantize_biases, *MOTION_PASSES, remove_dead])
RUNTIME_PASSES.register("tensorrt", [*COMMON_PASSES, remove_dead])


def apply_passes(model: onnx.ModelProto, runtime: str) -> dict[str, int]:
    view = GraphView(model)
    return {p.__name__: p(view) for p in RUNTIME_PASSES.get(runtime)}
