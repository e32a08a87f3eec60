"""What an artifact's own graph says about its input and output, read without running it.

A manifest-less artifact still declares its input name, shape (fixed or symbolic batch and sides),
element type and class count; onnxruntime_perf_test and trtexec time a model from exactly these
facts. One inspector per artifact kind (`GRAPH_INSPECTORS`, keyed like `RUNNERS`), so supporting
another format is one registered function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeattn.errors import InputError
from edgeattn.registry import Registry

Dim = int | str  # a fixed size, or a symbolic one ("batch", "?")


@dataclass
class GraphFacts:
    """The single image input and the logits output of an artifact's graph."""

    target: str  # the artifact kind (onnx, coreml)
    input_name: str
    input_shape: list[Dim]
    dtype: str  # float32 | float16
    output_name: str
    num_classes: int
    precision: str = "fp32"  # fp32 | fp16 | int8 (from the graph's types and ops)
    image_input: bool = False  # takes 0..255 RGB images and normalises itself (Core ML image inputs)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def static_batch(self) -> int | None:
        b = self.input_shape[0]
        return b if isinstance(b, int) else None

    @property
    def static_size(self) -> tuple[int, int] | None:
        h, w = self.input_shape[2], self.input_shape[3]
        return (h, w) if isinstance(h, int) and isinstance(w, int) else None


GRAPH_INSPECTORS: Registry[Callable[[Path], GraphFacts]] = Registry("graph inspector")


def check_image_input(path: Path, name: str, shape: list[Dim], dtype: str) -> None:
    """edgeattn feeds one float NCHW RGB batch: refuse anything else in one line, before running."""
    if len(shape) != 4:
        raise InputError(
            f"{path.name} takes a rank-{len(shape)} input {name!r} {shape}",
            "give an image classifier whose input is (batch, 3, height, width)",
        )
    if shape[1] != 3 and shape[3] == 3:
        raise InputError(
            f"{path.name} takes channels-last (NHWC) input {name!r} {shape}; edgeattn feeds NCHW",
            "export the model with a (batch, 3, height, width) input",
        )
    if isinstance(shape[1], int) and shape[1] != 3:
        raise InputError(
            f"{path.name} takes {shape[1]}-channel input {name!r} {shape}", "give an RGB image classifier"
        )
    if dtype not in ("float32", "float16"):
        raise InputError(
            f"{path.name} takes {dtype} input {name!r}", "export the model with a float32 or float16 input"
        )


@GRAPH_INSPECTORS.register("onnxruntime")
def onnx_facts(path: Path) -> GraphFacts:
    import onnx
    from onnx import TensorProto

    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001  protobuf raises DecodeError, onnx its own errors
        raise InputError(
            f"{path} is not a readable ONNX model ({type(exc).__name__})",
            "check the file (corrupt or truncated?)",
        ) from None
    graph = model.graph
    weights = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    if len(inputs) != 1 or not graph.output:
        raise InputError(
            f"{path.name} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)})",
            "give an image classifier with one image input",
        )

    def dims(value: Any) -> list[Dim]:
        return [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in value.type.tensor_type.shape.dim
        ]

    inp, out = inputs[0], graph.output[0]
    elem = inp.type.tensor_type.elem_type
    dtype = {TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16"}.get(
        elem, TensorProto.DataType.Name(elem).lower()
    )
    shape = dims(inp)
    check_image_input(path, inp.name, shape, dtype)
    classes = dims(out)[-1:] or ["?"]
    if not isinstance(classes[0], int):
        raise InputError(
            f"{path.name}'s output {out.name!r} has no fixed class count ({dims(out)})",
            "export the model with a fixed number of classes in its output",
        )
    ops = {n.op_type for n in graph.node}
    quantized = bool(ops & {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul"})
    precision = "int8" if quantized else ("fp16" if dtype == "float16" else "fp32")
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    return GraphFacts(
        "onnx",
        inp.name,
        shape,
        dtype,
        out.name,
        classes[0],
        precision,
        details={"opset": opsets.get("ai.onnx")},
    )


@GRAPH_INSPECTORS.register("coreml")
def coreml_facts(path: Path) -> GraphFacts:
    """An ML Program's declared input; the class count from one run of the reference executor on
    zeros (an ML Program need not declare its output shape)."""
    import numpy as np

    from edgeattn.runtime.coreml_ref import load_program

    program = load_program(path)
    if len(program.inputs) != 1:
        raise InputError(
            f"{path.name} takes {len(program.inputs)} inputs", "give an image classifier with one image input"
        )
    inp = program.inputs[0]
    shape: list[Dim] = [d if isinstance(d, int) else "?" for d in (inp.type.shape or [])]
    dtype = "float16" if inp.type.dtype == "fp16" else "float32"
    check_image_input(path, inp.name, shape, dtype)
    if not all(isinstance(d, int) for d in shape[2:]):
        raise InputError(f"{path.name} has flexible input sides {shape}", "export it with a fixed input size")
    probe = [d if isinstance(d, int) else 1 for d in shape]
    logits = np.asarray(program.run({inp.name: np.zeros(probe, np.float32)})[program.outputs[0]])
    precision = "fp16" if program.compute_dtype == "fp16" else "fp32"
    return GraphFacts(
        "coreml",
        inp.name,
        shape,
        dtype,
        program.outputs[0],
        int(logits.shape[-1]),
        precision,
        image_input=inp.image is not None,
        details={"deployment_target": program.deployment_target},
    )
