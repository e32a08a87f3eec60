"""Q/DQ motion (edgeattn/onnx/qdq_motion.py): data movement and max-pools run on int8, and the graph
still computes exactly what it computed before (bit for bit on onnxruntime)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeattn.onnx.graph import GraphView, remove_dead
from edgeattn.onnx.qdq_motion import drop_requantize, hoist_quantize, shapes_of_quantized, sink_dequantize
from edgeattn.onnx.qdq_passes import RUNTIME_PASSES

MOTION = (shapes_of_quantized, sink_dequantize, hoist_quantize, drop_requantize, remove_dead)


def _init(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def head_split_graph(per_channel: bool = False) -> onnx.ModelProto:
    """x -> Q -> DQ -> Reshape -> Split -> Squeeze -> Transpose -> Elu (an attention head split), and
    x -> Relu -> MaxPool -> Q -> DQ -> Add (a pooled residual); every float tensor at the end."""
    scale = [0.05, 0.07] if per_channel else 0.05
    zero = np.array([128, 128] if per_channel else 128, dtype=np.uint8)
    axis = [helper.make_attribute("axis", 1)] if per_channel else []
    q = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q")
    dq = helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq")
    for node in (q, dq):
        node.attribute.extend(axis)
    nodes = [
        q,
        dq,
        helper.make_node("Shape", ["xd"], ["shape"]),
        helper.make_node("Reshape", ["xd", "new_shape"], ["r"]),
        helper.make_node("Split", ["r", "sizes"], ["a", "b"], axis=1),
        helper.make_node("Squeeze", ["a", "ax1"], ["a2"]),
        helper.make_node("Transpose", ["a2"], ["at"], perm=[0, 2, 1]),
        helper.make_node("Elu", ["at"], ["head"]),
        helper.make_node("Squeeze", ["b", "ax1"], ["other"]),
        helper.make_node("Relu", ["x"], ["xr"]),
        helper.make_node("MaxPool", ["xr"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("QuantizeLinear", ["pooled", "s2", "z2"], ["pq"]),
        helper.make_node("DequantizeLinear", ["pq", "s2", "z2"], ["pooled_dq"]),
    ]
    graph = helper.make_graph(
        nodes,
        "motion",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [
            helper.make_tensor_value_info("head", TensorProto.FLOAT, [1, 16, 1]),
            helper.make_tensor_value_info("other", TensorProto.FLOAT, [1, 1, 16]),
            helper.make_tensor_value_info("pooled_dq", TensorProto.FLOAT, [1, 2, 2, 2]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [4]),
        ],
        [
            _init("s", np.asarray(scale, dtype=np.float32)),
            _init("z", zero),
            _init("s2", np.float32(0.04)),
            _init("z2", np.uint8(0)),
            _init("new_shape", np.array([1, 2, 1, 16], dtype=np.int64)),
            _init("sizes", np.array([1, 1], dtype=np.int64)),
            _init("ax1", np.array([1], dtype=np.int64)),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def moved(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, int]]:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    view = GraphView(copy)
    counts = {p.__name__: p(view) for p in MOTION}
    onnx.checker.check_model(copy)
    return copy, counts


def input_types(model: onnx.ModelProto) -> list[tuple[str, int]]:
    """(op type, element type of its data input) per node, from ONNX shape inference."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    types.update({i.name: i.type.tensor_type.elem_type for i in inferred.graph.input})
    return [(n.op_type, types.get(n.input[0])) for n in inferred.graph.node]


def types_of(model: onnx.ModelProto, op: str) -> set[int]:
    return {t for o, t in input_types(model) if o == op}


def test_motion_runs_data_movement_and_pool_on_uint8_with_identical_outputs():
    model = head_split_graph()
    after, counts = moved(model)
    assert (
        counts["sink_dequantize"] >= 4
        and counts["hoist_quantize"] == 1
        and counts["shapes_of_quantized"] == 1
    )
    for op in ("Reshape", "Split", "Squeeze", "Transpose", "MaxPool"):
        assert types_of(after, op) == {TensorProto.UINT8}, op
    assert types_of(after, "Elu") == {
        TensorProto.FLOAT
    }  # compute stays float: DequantizeLinear lands before it
    x = np.random.default_rng(0).normal(size=(1, 2, 4, 4)).astype(np.float32) * 3
    for before_out, after_out in zip(run(model, x), run(after, x), strict=True):
        np.testing.assert_array_equal(before_out, after_out)


def test_per_channel_qdq_is_not_moved():
    """Negative control: a per-channel DequantizeLinear cannot pass a reshape without tracking its axis."""
    after, counts = moved(head_split_graph(per_channel=True))
    assert counts["sink_dequantize"] == 0
    assert types_of(after, "Reshape") == {TensorProto.FLOAT}


def test_onnxruntime_int8_export_applies_motion_and_tensorrt_does_not():
    names = {p.__name__ for p in RUNTIME_PASSES.get("onnxruntime")}
    assert {"sink_dequantize", "hoist_quantize"} <= names
    assert "sink_dequantize" not in {p.__name__ for p in RUNTIME_PASSES.get("tensorrt")}


@pytest.mark.parametrize("key", ["attn_vgg11_linear"])
def test_real_int8_export_is_unchanged_by_motion(tmp_path, trained, key):
    """A real model's INT8 export with and without the motion passes: the same logits, bit for bit, and
    data-movement ops that read int8 only with motion."""
    from edgeattn.checkpoint import load_checkpoint
    from edgeattn.onnx.torch_export import torch_to_onnx
    from edgeattn.quantize import quantize_checkpoint
    from edgeattn.quantize.onnx_export import exportable_copy

    q = tmp_path / "int8.pt"
    quantize_checkpoint(trained(key), "builtin:digits", q, calib_size=32)
    handle = load_checkpoint(q)
    shape = tuple(handle.input_spec.shape(1))
    torch_to_onnx(exportable_copy(handle.module), tmp_path / "raw.onnx", input_shape=shape, opset=17)
    everything = RUNTIME_PASSES.get("onnxruntime")
    graphs = {}
    for label, passes in (("plain", [p for p in everything if p not in MOTION]), ("moved", everything)):
        model = onnx.load(str(tmp_path / "raw.onnx"))
        view = GraphView(model)
        for graph_pass in passes:
            graph_pass(view)
        if label == "plain":
            remove_dead(view)
        graphs[label] = model
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    outs = {
        label: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"input": x}
        )[0]
        for label, m in graphs.items()
    }
    np.testing.assert_array_equal(outs["plain"], outs["moved"])
    int8 = {TensorProto.UINT8, TensorProto.INT8}
    movement = {"Transpose", "Reshape", "MaxPool", "Split"}

    def int8_movement(model: onnx.ModelProto) -> int:
        return sum(1 for op, t in input_types(model) if op in movement and t in int8)

    assert int8_movement(graphs["plain"]) < int8_movement(graphs["moved"])


def test_undo_motion_restores_each_dequantize_after_its_quantize():
    """The float twin and the layerwise report pair every activation DequantizeLinear with its
    QuantizeLinear: undo_motion gives them that form back, computing the same outputs."""
    from edgeattn.onnx.qdq_motion import undo_motion

    model = head_split_graph()
    after, _ = moved(model)
    view = GraphView(after)
    assert undo_motion(view) >= 4
    remove_dead(view)
    assert {TensorProto.FLOAT} == types_of(after, "Reshape") == types_of(after, "Transpose")
    producers = {o: n for n in after.graph.node for o in n.output}
    for n in after.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in producers:
            assert producers[n.input[0]].op_type == "QuantizeLinear"
    x = np.random.default_rng(2).normal(size=(1, 2, 4, 4)).astype(np.float32)
    for a, b in zip(run(model, x), run(after, x), strict=True):
        np.testing.assert_array_equal(a, b)
