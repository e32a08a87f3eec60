"""`QdqGraph`: the index of a Q/DQ ONNX graph that the float twin and the layerwise report work from.

It records, for every DequantizeLinear, whether it dequantizes an activation (fed by a QuantizeLinear:
which FP32 tensor, which Q node) or a constant weight, and which compute nodes read quantized inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from edgeattn.errors import InputError
from edgeattn.onnx.graph import DQ_OP, Q_OP, QDQ_OPS, GraphView, attr
from edgeattn.onnx.qdq_motion import undo_motion

# Ops that only move or select values: quantizers give them the scale of their input, so their input
# Q/DQ is the producer's quantization, not error they add; keeping one in FP32 changes nothing while
# its outputs are quantized again. They are not ranked.
MOVEMENT_OPS = frozenset(
    {
        "Reshape",
        "Transpose",
        "Squeeze",
        "Unsqueeze",
        "Flatten",
        "Split",
        "Slice",
        "Gather",
        "Concat",
        "Identity",
        "MaxPool",
        "Expand",
        "Tile",
        "Pad",
        "DepthToSpace",
        "SpaceToDepth",
        "Resize",
    }
)


class QdqGraph:
    """Index of one ONNX graph: producers, consumers, constants, and how each DequantizeLinear is fed."""

    def __init__(self, model: onnx.ModelProto) -> None:
        # edgeattn's onnxruntime export moves Q/DQ across reshapes and pools (qdq_motion.py); put every
        # activation DequantizeLinear back right after its QuantizeLinear (in place, computing the same).
        undo_motion(GraphView(model))
        self.model = model
        g = model.graph
        self.producer = {o: n for n in g.node for o in n.output if o}
        self.consumers: dict[str, list[Any]] = {}
        for n in g.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.outputs = {o.name for o in g.output}
        self.initializers = {i.name: i for i in g.initializer}
        self._constants: dict[str, np.ndarray] = {}
        for n in g.node:
            if n.op_type == "Constant" and n.output:
                value = attr(n, "value", None)
                if value is not None:
                    self._constants[n.output[0]] = numpy_helper.to_array(value)
        # DequantizeLinear output -> ("act", float source tensor, Q node) | ("weight", None, None)
        self.dq: dict[str, tuple[str, str | None, Any]] = {}
        self.dq_nodes: dict[str, Any] = {}
        self.clamps_at_zero: set[str] = set()  # activation Q/DQ whose range starts at 0 (see below)
        self.output_qdq: dict[str, str] = {}  # FP32 tensor -> the Q/DQ'd graph output made from it
        for n in g.node:
            if n.op_type != DQ_OP:
                continue
            src = n.input[0]
            prod = self.producer.get(src)
            if prod is not None and prod.op_type == Q_OP:
                self.dq[n.output[0]] = ("act", prod.input[0], prod)
                if self._range_starts_at_zero(prod):
                    self.clamps_at_zero.add(n.output[0])
                if n.output[0] in self.outputs:  # a model output quantized after its producer
                    self.output_qdq[prod.input[0]] = n.output[0]
            elif self.is_constant(src):
                self.dq[n.output[0]] = ("weight", None, None)
            else:
                continue
            self.dq_nodes[n.output[0]] = n

    def _range_starts_at_zero(self, qnode: Any) -> bool:
        """True when the QuantizeLinear's lowest code dequantizes to 0: it then also acts as a ReLU.

        onnxruntime's QDQ quantizer removes a ReLU after Conv/MatMul and lets this clamp do its work, so
        the FP32 twin must put a ReLU where such a Q/DQ pair was (on a tensor that is >= 0 anyway, a
        ReLU changes nothing). Saturation at the top of the range stays counted as quantization error.
        """
        if len(qnode.input) < 3 or not qnode.input[2]:
            return True  # no zero point: uint8 with zero point 0
        if not self.is_constant(qnode.input[2]):
            return False
        zp = self.constant(qnode.input[2])
        return zp.dtype.kind in "iu" and bool(np.all(zp == np.iinfo(zp.dtype).min))

    def is_constant(self, name: str) -> bool:
        return name in self.initializers or name in self._constants

    def constant_names(self) -> list[str]:
        """Every initializer and Constant-node output of the graph."""
        return [*self.initializers, *self._constants]

    def constant(self, name: str) -> np.ndarray:
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        return self._constants[name]

    def dequantized(self, dq_out: str) -> tuple[np.ndarray, np.ndarray]:
        """Value of a weight DequantizeLinear output, (q - zero_point) * scale per axis, and its step."""
        node = self.dq_nodes[dq_out]
        q = self.constant(node.input[0]).astype(np.float64)
        scale = self.constant(node.input[1]).astype(np.float64)
        zp = (
            self.constant(node.input[2]).astype(np.float64)
            if len(node.input) > 2 and node.input[2]
            else np.zeros_like(scale)
        )
        if attr(node, "block_size", 0):
            raise InputError(
                "blocked quantization (DequantizeLinear block_size) is not supported by --layerwise",
                "use per-tensor or per-channel INT8",
            )
        if scale.ndim == 1 and q.ndim > 0 and scale.size > 1:
            axis = int(attr(node, "axis", 1)) % q.ndim
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        return ((q - zp) * scale).astype(np.float32), np.broadcast_to(np.abs(scale), q.shape).astype(
            np.float64
        )

    def quantized_nodes(self) -> list[Any]:
        """Compute nodes (not Q/DQ, constants or data movement) with an input from a DequantizeLinear."""
        skip = QDQ_OPS | MOVEMENT_OPS | {"Constant"}
        return [
            n for n in self.model.graph.node if n.op_type not in skip and any(i in self.dq for i in n.input)
        ]
