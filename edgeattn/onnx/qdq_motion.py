"""Q/DQ motion: move per-tensor QuantizeLinear/DequantizeLinear across data-movement ops and max-pools,
so reshapes, transposes, splits and pools run on int8 data and residual adds fuse into int8 kernels.

NNCF's export quantizes exactly where the torch model does: a conv's output is quantized and at once
dequantized, and the float tensor then goes through Reshape / Split / Squeeze / Transpose (an attention
block's head split), or through a residual Add and a MaxPool before the next conv quantizes it again.
onnxruntime's own QDQ propagation moves a DequantizeLinear only past a single-consumer op with one
output, so those chains stay float: measured on attn_vgg16 at 224² (AVX-512 VNNI, batch 1), float
Split, Transpose and MaxPool cost about a fifth of the INT8 model's time, where the same ops on uint8
move a quarter of the bytes.

Every move here is exact, so the ONNX still computes what the torch model computes:
- data-movement ops (Reshape, Transpose, Squeeze, Unsqueeze, Flatten, Split) only rearrange elements,
  and a per-tensor Q/DQ maps each element alone, so the two commute;
- MaxPool commutes with a per-tensor Q/DQ because quantization is monotone non-decreasing (and a DQ's
  scale is positive), so the max of the quantized values is the quantized max;
- `Shape` of a dequantized tensor is the shape of the quantized one;
- QuantizeLinear(DequantizeLinear(x)) with the same scale, zero point and type is x.
Per-channel Q/DQ (an `axis`) is left where it is: moving it would need the axis tracked through the op.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from edgeattn.onnx.graph import DQ_OP, Q_OP, GraphView, toposort

# Ops that only move elements (input 0 is the data; the other inputs are shapes, axes or split sizes).
DATA_MOVEMENT_OPS = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Split"})
# Ops a per-tensor Q/DQ commutes with because it is monotone (single output, input 0 is the data).
MONOTONE_OPS = frozenset({"MaxPool"})
MOVABLE_OPS = DATA_MOVEMENT_OPS | MONOTONE_OPS


def _per_tensor_params(view: GraphView, node: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray] | None:
    """(scale, zero point) of a per-tensor Q/DQ whose parameters are initializers, else None."""
    if len(node.input) < 3:
        return None
    scale, zero = view.array(node.input[1]), view.array(node.input[2])
    if scale is None or zero is None or scale.size != 1 or zero.size != 1 or float(scale.reshape(-1)[0]) <= 0:
        return None
    return scale, zero


def _movable(node: onnx.NodeProto | None) -> bool:
    if node is None or node.op_type not in MOVABLE_OPS:
        return False
    # MaxPool's optional second output (indices) would change meaning; only its values output may move.
    return not (node.op_type == "MaxPool" and len([o for o in node.output if o]) > 1)


def _add_like(view: GraphView, like: onnx.NodeProto, data: str, out: str) -> None:
    """Append a Q/DQ node of `like`'s type, scale, zero point and attributes from `data` to `out`."""
    node = helper.make_node(like.op_type, [data, *like.input[1:]], [out], name=f"{out}_node")
    node.attribute.extend(like.attribute)
    view.graph.node.append(node)


def _forget_types(view: GraphView, tensors: set[str]) -> None:
    """Drop recorded value_info of tensors whose element type changed (float -> int8/uint8)."""
    for info in list(view.graph.value_info):
        if info.name in tensors:
            view.graph.value_info.remove(info)


def shapes_of_quantized(view: GraphView) -> int:
    """Shape(DequantizeLinear(x)) -> Shape(x), so the DequantizeLinear is free to move."""
    changed = 0
    for node in list(view.graph.node):
        producer = view.producer.get(node.input[0]) if node.op_type == "Shape" else None
        if producer is not None and producer.op_type == DQ_OP:
            node.input[0] = producer.input[0]
            changed += 1
    view.refresh()
    return changed


def sink_dequantize(view: GraphView) -> int:
    """DequantizeLinear -> movable op  =>  movable op -> DequantizeLinear (one per output)."""
    changed, progress = 0, True
    while progress:
        progress = False
        for dq in list(view.graph.node):
            if dq.op_type != DQ_OP or _per_tensor_params(view, dq) is None or dq.input[0] in view.inits:
                continue
            for user in list(view.consumers.get(dq.output[0], [])):
                if not _movable(user) or user.input[0] != dq.output[0] or dq.output[0] in user.input[1:]:
                    continue
                user.input[0] = dq.input[0]
                for k, out in enumerate(user.output):
                    if not out:
                        continue
                    raw = view.unique(f"{out}_q")
                    user.output[k] = raw
                    _add_like(view, dq, raw, out)
                changed += 1
                progress = True
                view.refresh()
        if progress:
            toposort(view)
            view.refresh()
    return changed


def hoist_quantize(view: GraphView) -> int:
    """movable op -> QuantizeLinear  =>  QuantizeLinear -> movable op, where the op's output feeds only
    that QuantizeLinear (the op then runs on int8; its float input stays for any other reader)."""
    changed, progress = 0, True
    while progress:
        progress = False
        for q in list(view.graph.node):
            if q.op_type != Q_OP or _per_tensor_params(view, q) is None:
                continue
            op = view.producer.get(q.input[0])
            if not _movable(op) or op.op_type == "Split" or view.sole_consumer(op.output[0]) is not q:
                continue
            raw = view.unique(f"{op.input[0]}_q")
            _add_like(view, q, op.input[0], raw)
            op.input[0] = raw
            old_out = op.output[0]
            op.output[0] = q.output[0]
            view.graph.node.remove(q)
            _forget_types(view, {old_out, q.output[0]})
            changed += 1
            progress = True
            toposort(view)
            view.refresh()
            break
    return changed


def drop_requantize(view: GraphView) -> int:
    """QuantizeLinear(DequantizeLinear(x)) with the same scale, zero point and type -> x."""
    changed = 0
    for q in list(view.graph.node):
        dq = view.producer.get(q.input[0]) if q.op_type == Q_OP else None
        if dq is None or dq.op_type != DQ_OP or q.output[0] in view.outputs:
            continue
        qp, dp = _per_tensor_params(view, q), _per_tensor_params(view, dq)
        if qp is None or dp is None:
            continue
        if qp[1].dtype != dp[1].dtype or not (np.array_equal(qp[0], dp[0]) and np.array_equal(qp[1], dp[1])):
            continue
        view.rename_tensor(q.output[0], dq.input[0])
        view.graph.node.remove(q)
        changed += 1
        view.refresh()
    return changed


def undo_motion(view: GraphView) -> int:
    """The inverse of `sink_dequantize` / `hoist_quantize`: movable op on int8 -> DequantizeLinear(s)
    =>  DequantizeLinear -> movable op, until every activation DequantizeLinear follows its
    QuantizeLinear again. Exact like the forward moves; tools that pair each activation DequantizeLinear
    with its QuantizeLinear (the float twin, the layerwise drift report) read graphs in this form."""
    changed, progress = 0, True
    while progress:
        progress = False
        for op in list(view.graph.node):
            if not _movable(op):
                continue
            outs = [o for o in op.output if o]
            readers = [view.consumers.get(o, []) for o in outs]
            if any(
                len(r) != 1 or r[0].op_type != DQ_OP or o in view.outputs
                for o, r in zip(outs, readers, strict=True)
            ):
                continue
            dqs = [r[0] for r in readers]
            params = [_per_tensor_params(view, dq) for dq in dqs]
            if any(p is None for p in params) or any(
                list(dq.input[1:]) != list(dqs[0].input[1:]) for dq in dqs
            ):
                continue
            first = dqs[0]
            floated = view.unique(f"{op.input[0]}_dq")
            _add_like(view, first, op.input[0], floated)
            op.input[0] = floated
            for k, o in enumerate(op.output):
                if o:
                    dq = view.consumers[o][0]
                    op.output[k] = dq.output[0]
                    view.graph.node.remove(dq)
            changed += 1
            progress = True
            toposort(view)
            view.refresh()
            break
    return changed
