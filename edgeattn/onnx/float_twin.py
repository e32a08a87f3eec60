"""The FP32 twin of a Q/DQ ONNX graph, and the same graph with chosen nodes computing in FP32.

The twin is derived from the INT8 graph itself: every DequantizeLinear(QuantizeLinear(x)) becomes
Identity(x) and every DequantizeLinear(int8 weight) becomes the FP32 weight (the original values when a
reference holds a tensor that rounds to exactly those int8 values, see `weights.py`; otherwise the
dequantized values). Twin and INT8 graph therefore share every tensor name, whatever exporter or
quantizer made the model, and no name matching between two independently exported graphs is needed.

`keep_fp32(model, nodes)` removes the named nodes' input Q/DQ (they run in FP32), so a user, or the
quantize stage's `--max-drop` loop, can check that keeping the worst layers in FP32 reduces the drift.
`add_local_copies` adds to a twin a copy of every quantized node that sees quantized twin activations:
the error each node adds on its own (what the layerwise report ranks).
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.helper as oh
import onnx.numpy_helper as nh

from edgeattn.errors import InputError
from edgeattn.fileio import atomic_output
from edgeattn.onnx.graph import DQ_OP, Q_OP, QDQ_OPS, load_model, sort_nodes
from edgeattn.onnx.qdq_graph import MOVEMENT_OPS, QdqGraph
from edgeattn.onnx.weights import restore_weights

LOCAL_SUFFIX = "__edgeattn_local"
FP32_SUFFIX = "__edgeattn_fp32"


def _prune_dead(model: Any) -> None:
    """Drop Q/DQ/Constant nodes whose outputs nobody uses, then unused initializers."""
    g = model.graph
    outputs = {o.name for o in g.output}
    changed = True
    while changed:
        used = {i for n in g.node for i in n.input} | outputs
        keep = [
            n for n in g.node if n.op_type not in QDQ_OPS | {"Constant"} or any(o in used for o in n.output)
        ]
        changed = len(keep) != len(g.node)
        if changed:
            del g.node[:]
            g.node.extend(keep)
    used = {i for n in g.node for i in n.input} | outputs
    keep_init = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep_init)


def float_twin(model: Any, weights: Mapping[str, np.ndarray] | None = None) -> tuple[Any, int, int]:
    """The INT8 graph with every Q/DQ pair bypassed and FP32 weights; returns (model, restored, total)."""
    model = load_model(model)
    graph = QdqGraph(model)
    values, restored = restore_weights(graph, weights or {})
    twin = copy.deepcopy(model)
    nodes = []
    for n in twin.graph.node:
        out = n.output[0] if n.output else ""
        if n.op_type == DQ_OP and out in graph.dq:
            kind, src, _ = graph.dq[out]
            if kind == "act":
                op = "Relu" if out in graph.clamps_at_zero else "Identity"
                nodes.append(oh.make_node(op, [src], [out], name=f"{n.name}{FP32_SUFFIX}"))
            else:
                const = out + FP32_SUFFIX
                twin.graph.initializer.append(nh.from_array(values[out], const))
                nodes.append(oh.make_node("Identity", [const], [out], name=f"{n.name}{FP32_SUFFIX}"))
        else:
            nodes.append(n)
    del twin.graph.node[:]
    twin.graph.node.extend(nodes)
    _prune_dead(twin)
    onnx.checker.check_model(twin)
    return twin, restored, len(values)


def keep_fp32(
    model: Any,
    nodes: Iterable[str],
    out: Path | str | None = None,
    weights: Mapping[str, np.ndarray] | None = None,
) -> Any:
    """A copy of the QDQ model in which the named nodes compute in FP32 on FP32 inputs.

    Each input is traced back through its Q/DQ pairs and any data-movement ops between them (Transpose,
    Reshape, Split, ...; cloned in FP32) to the FP32 tensor it came from, so the node sees exactly what
    the FP32 model would give it from the same upstream values. Weight inputs get their original FP32
    values when `weights` (see `reference_weights`) holds them, else their dequantized values.
    """
    model = copy.deepcopy(load_model(model))
    graph = QdqGraph(model)
    by_name = {n.name: n for n in model.graph.node}
    values: dict[str, np.ndarray] | None = None
    made: dict[str, str] = {}
    extra: list[Any] = []

    def fp32_of(tensor: str) -> str:
        nonlocal values
        if tensor in made:
            return made[tensor]
        result = tensor
        if tensor in graph.dq and graph.dq[tensor][0] == "act":
            result = fp32_of(graph.dq[tensor][1])
            if tensor in graph.clamps_at_zero:  # the Q/DQ pair also stood for a removed ReLU
                relu = result + "__edgeattn_relu"
                if relu not in made.values():
                    extra.append(oh.make_node("Relu", [result], [relu], name=relu))
                result = relu
        elif tensor in graph.dq:
            if values is None:
                values, _ = restore_weights(graph, weights or {})
            result = tensor + FP32_SUFFIX
            model.graph.initializer.append(nh.from_array(values[tensor], result))
        elif tensor in graph.producer and graph.producer[tensor].op_type in MOVEMENT_OPS:
            mover = graph.producer[tensor]
            inputs = [fp32_of(i) if i else i for i in mover.input]
            if inputs != list(mover.input):
                outputs = [o + FP32_SUFFIX if o else o for o in mover.output]
                clone = oh.make_node(
                    mover.op_type, inputs, outputs, name=mover.name + FP32_SUFFIX, domain=mover.domain or None
                )
                clone.attribute.extend(mover.attribute)
                extra.append(clone)
                for o, o32 in zip(mover.output, outputs, strict=True):
                    made[o] = o32
                result = made[tensor]
        made[tensor] = result
        return result

    for name in nodes:
        node = by_name.get(name)
        if node is None or node.op_type in QDQ_OPS:
            close = difflib.get_close_matches(name, [n.name for n in graph.quantized_nodes()], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InputError(
                f"no quantized node named {name!r} in the model",
                f"{hint}use a node name from the --layerwise report",
            )
        for idx, inp in enumerate(node.input):
            if inp:
                node.input[idx] = fp32_of(inp)
        for o in node.output:
            if o in graph.output_qdq:  # the model output this node makes is no longer quantized either
                dq = graph.dq_nodes[graph.output_qdq[o]]
                op = "Relu" if dq.output[0] in graph.clamps_at_zero else "Identity"
                dq.CopyFrom(oh.make_node(op, [o], [dq.output[0]], name=dq.name + FP32_SUFFIX))
    model.graph.node.extend(extra)
    _prune_dead(model)
    sort_nodes(model.graph, strict=False)
    onnx.checker.check_model(model)
    if out is not None:
        with atomic_output(out) as tmp:
            onnx.save(model, str(tmp))
    return model


def add_local_copies(twin: Any, graph: QdqGraph, float_names: set[str]) -> dict[str, str]:
    """Add to `twin` a copy of every quantized node fed with quantized twin activations.

    Returns {copy's output name: original output name} for the float outputs to compare.
    """
    added: dict[str, str] = {}
    requant: dict[str, str] = {}
    new_nodes = []

    def quantized(inp: str) -> str:
        if inp in requant:
            return requant[inp]
        kind, src, qnode = graph.dq[inp]
        dq = graph.dq_nodes[inp]
        dq_in = dq.input[0]
        if kind == "act":
            dq_in = inp + LOCAL_SUFFIX + "_q"
            new_nodes.append(
                oh.make_node(Q_OP, [src, *qnode.input[1:]], [dq_in], name=qnode.name + LOCAL_SUFFIX + inp)
            )
            new_nodes[-1].attribute.extend(qnode.attribute)
        local = inp + LOCAL_SUFFIX + "_dq"
        new_nodes.append(
            oh.make_node(DQ_OP, [dq_in, *dq.input[1:]], [local], name=dq.name + LOCAL_SUFFIX + inp)
        )
        new_nodes[-1].attribute.extend(dq.attribute)
        requant[inp] = local
        return local

    for node in graph.quantized_nodes():
        inputs = [quantized(i) if i in graph.dq else i for i in node.input]
        outputs = [o + LOCAL_SUFFIX if o else "" for o in node.output]
        copy_node = oh.make_node(
            node.op_type, inputs, outputs, name=node.name + LOCAL_SUFFIX, domain=node.domain or None
        )
        copy_node.attribute.extend(node.attribute)
        new_nodes.append(copy_node)
        for o in node.output:
            if o and o in graph.output_qdq:  # its output is quantized too (a model output): include that
                dq = graph.dq_nodes[graph.output_qdq[o]]
                qnode = graph.dq[dq.output[0]][2]
                q_out, dq_out = o + LOCAL_SUFFIX + "_oq", o + LOCAL_SUFFIX + "_odq"
                new_nodes.append(
                    oh.make_node(Q_OP, [o + LOCAL_SUFFIX, *qnode.input[1:]], [q_out], name=q_out)
                )
                new_nodes[-1].attribute.extend(qnode.attribute)
                new_nodes.append(oh.make_node(DQ_OP, [q_out, *dq.input[1:]], [dq_out], name=dq_out))
                new_nodes[-1].attribute.extend(dq.attribute)
                added[dq_out] = o
            elif o and o in float_names:
                added[o + LOCAL_SUFFIX] = o
    # Scales / zero points may have been pruned from the twin with the Q/DQ they fed: put them back.
    have = {i.name for i in twin.graph.initializer}
    needed = {i for n in new_nodes for i in n.input}
    twin.graph.initializer.extend(
        graph.initializers[n] for n in sorted(needed) if n in graph.initializers and n not in have
    )
    produced = {o for n in twin.graph.node for o in n.output}
    consts = [
        n
        for n in graph.model.graph.node
        if n.op_type == "Constant" and n.output[0] in needed and n.output[0] not in produced
    ]
    twin.graph.node.extend(copy.deepcopy(c) for c in consts)
    twin.graph.node.extend(new_nodes)
    return added
