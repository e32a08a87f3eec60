"""ONNX graphs: loading, an index for rewriting them, node order, and the facts read off a graph.

Every helper that reads or tidies a graph is defined here once (the Q/DQ passes, the float twin, the
export checks and the validation all use these).
"""

from __future__ import annotations

import ast
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgeattn.errors import InputError

INPUT_NAME = "input"  # the names edgeattn gives an exported graph's one input and one output
OUTPUT_NAME = "logits"
STANDARD_DOMAINS = frozenset({"", "ai.onnx"})
Q_OP, DQ_OP = "QuantizeLinear", "DequantizeLinear"
QDQ_OPS = frozenset({Q_OP, DQ_OP})
QDQ_MIN_OPSET = 13  # QuantizeLinear/DequantizeLinear gained the per-channel `axis` attribute in opset 13
DEFAULT_OPSET = 17  # what exports write when no opset is asked for (TensorRT 8.6's parser stops at 17)
# INT8 graphs for onnxruntime use opset 20 by default, for its standard `Gelu` op: at opset 17 a GELU is
# five ops (Div, Erf, Add, Mul, Mul) reading the DequantizeLinear before it twice; onnxruntime then gives
# each reader its own copy of that DequantizeLinear, which stops its Gelu fusion, so every INT8 GELU ran
# unfused. One Gelu node keeps it one kernel: efficientformer_l1 at 224², all layers INT8, ran 13.6 ms
# at opset 17 and 10.9 ms at opset 20 (interleaved, 2 threads). TensorRT keeps 17 (8.6's parser maximum).
INT8_OPSET: dict[str, int] = {"onnxruntime": 20}


def int8_opset(runtime: str, asked: int | None = None) -> int:
    """The opset of an INT8 graph for `runtime`: the one asked for, else the runtime's (see INT8_OPSET)."""
    return asked if asked is not None else INT8_OPSET.get(runtime, DEFAULT_OPSET)


def load_model(model: onnx.ModelProto | Path | str) -> onnx.ModelProto:
    """`model` itself when it is a ModelProto, else the ONNX file at that path (bad input: InputError)."""
    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if not path.exists():
        raise InputError(f"ONNX model {path} does not exist", "check the path")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and friends
        raise InputError(f"cannot read ONNX model {path} ({type(exc).__name__})", "re-export it") from None


class GraphView:
    """Indexes of one ONNX graph (initializers, producers, consumers), rebuilt after each change."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.graph = model.graph
        self.refresh()

    def refresh(self) -> None:
        self.inits = {i.name: i for i in self.graph.initializer}
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for n in self.graph.node:
            for t in n.input:
                self.consumers[t].append(n)
        self.outputs = {o.name for o in self.graph.output}

    def array(self, name: str) -> np.ndarray | None:
        init = self.inits.get(name)
        return None if init is None else numpy_helper.to_array(init)

    def set_array(self, name: str, value: np.ndarray) -> None:
        if name in self.inits:
            self.graph.initializer.remove(self.inits[name])
        # np.array, not np.ascontiguousarray: the latter turns a 0-d scalar (e.g. a Gather index) into
        # shape [1], which breaks the rank of shape arithmetic in dynamic-batch graphs.
        self.graph.initializer.append(numpy_helper.from_array(np.array(value, order="C"), name))
        self.inits = {i.name: i for i in self.graph.initializer}

    def unique(self, base: str) -> str:
        names = set(self.inits) | set(self.producer) | {i.name for i in self.graph.input}
        name, k = base, 0
        while name in names:
            k += 1
            name = f"{base}_{k}"
        return name

    def sole_consumer(self, tensor: str) -> onnx.NodeProto | None:
        users = self.consumers.get(tensor, [])
        return users[0] if len(users) == 1 and tensor not in self.outputs else None

    def rename_tensor(self, old: str, new: str) -> None:
        """Make every consumer (and graph output) read `new` instead of `old`."""
        for n in self.graph.node:
            for i, t in enumerate(n.input):
                if t == old:
                    n.input[i] = new
        for o in self.graph.output:
            if o.name == old:
                o.name = new


def attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def set_attr(node: onnx.NodeProto, name: str, value: Any) -> None:
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(name, value))


# ------------------------------------------------------------------------------------ node order
def sort_nodes(graph: onnx.GraphProto, strict: bool = True) -> None:
    """Reorder nodes so every tensor is produced before it is used (stable). A cycle or an undefined
    input raises when `strict`, else the nodes that cannot be placed stay at the end as they were."""
    avail = {i.name for i in graph.initializer} | {i.name for i in graph.input} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = []
        for n in pending:
            if all(t in avail for t in n.input):
                ordered.append(n)
                avail.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            if strict:
                raise RuntimeError(f"graph has a cycle or dangling inputs near {rest[0].name}")
            ordered.extend(rest)
            break
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def toposort(view: GraphView) -> None:
    sort_nodes(view.graph, strict=True)


def remove_dead(view: GraphView) -> int:
    """Drop nodes nobody reads and initializers nobody uses; put nodes in topological order."""
    removed = 0
    while True:
        view.refresh()
        dead = [
            n
            for n in view.graph.node
            if all(o not in view.consumers and o not in view.outputs for o in n.output if o)
        ]
        if not dead:
            break
        for n in dead:
            view.graph.node.remove(n)
        removed += len(dead)
    used = {t for n in view.graph.node for t in n.input}
    for init in list(view.graph.initializer):
        if init.name not in used and init.name not in view.outputs:
            view.graph.initializer.remove(init)
    toposort(view)
    view.refresh()
    return removed


def expose_outputs(model: onnx.ModelProto, names: Iterable[str]) -> None:
    """Make the named (FLOAT) tensors graph outputs too, so a session returns them."""
    present = {o.name for o in model.graph.output}
    for name in names:
        if name not in present:
            model.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
            present.add(name)


# ------------------------------------------------------------------------------------------ facts
def opset_of(model: onnx.ModelProto) -> int:
    return max((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), default=0)


def op_histogram(model: onnx.ModelProto) -> dict[str, int]:
    return dict(Counter(n.op_type for n in model.graph.node).most_common())


def nonstandard_ops(model: onnx.ModelProto) -> list[str]:
    """`domain::op` of every node outside the standard ONNX domain (FakeQuantize, com.microsoft, ...)."""
    return sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in STANDARD_DOMAINS})


def float_tensors(model: onnx.ModelProto) -> set[str]:
    """Names of the FLOAT tensors of a graph (shape inference; unknown types are left out)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001  shape inference is best effort
        inferred = model
    g = inferred.graph
    return {
        vi.name
        for vi in list(g.value_info) + list(g.output) + list(g.input)
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    }


def torch_module_of(node: onnx.NodeProto) -> str:
    """The torch module a node came from: dynamo's name_scopes metadata or a TorchScript-style name."""
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = [s for s in ast.literal_eval(p.value) if s]
            except (ValueError, SyntaxError):
                break
            return scopes[-2] if len(scopes) >= 2 else (scopes[0] if scopes else "")
    name = node.name
    if name.startswith("/") and name.count("/") >= 2:
        return ".".join(part for part in name.strip("/").split("/")[:-1])
    return ""
