"""Where INT8 drift comes from: per-layer error of a QDQ ONNX model against its floating-point twin.

The twin (`edgeattn.onnx.float_twin`) is derived from the INT8 graph itself, so twin and INT8 graph
share every tensor name, whatever exporter or quantizer made the model; its weights are the FP32
originals where a reference holds them (`edgeattn.onnx.weights.reference_weights`), otherwise the
dequantized values, and the report says so.

Two errors are measured per quantized node (a node with at least one input from a DequantizeLinear):
- local: the node run on the twin's FP32 activations, with only its own inputs/weights quantized
  (the same scales and zero points), against the twin's output. This is the error the node adds; it is
  what ranks the layers, since keeping the worst one in FP32 removes the most error at its source.
- cumulative: the INT8 graph's output tensor against the twin's (everything up to this node).
Both are SQNR in dB (higher is better) and relative L2 error. All quantized nodes are run in one
onnxruntime session (copies of the nodes are added to the twin), so the cost is two model runs per input.

With `verify_top`, the model-output effect of keeping each of the worst layers in FP32
(`edgeattn.onnx.float_twin.keep_fp32`) is measured too.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeattn.errors import InputError
from edgeattn.onnx.float_twin import add_local_copies, float_twin, keep_fp32
from edgeattn.onnx.graph import expose_outputs, float_tensors, load_model, torch_module_of
from edgeattn.onnx.ort import feed_batches, run_outputs, session
from edgeattn.onnx.qdq_graph import QdqGraph


# ----------------------------------------------------------------------------------------- reports
@dataclass
class LayerDrift:
    node: str
    op_type: str
    output: str
    module: str  # torch module path the node came from, when the exporter recorded it
    sqnr_db: float | None  # local error this node's own quantization adds (None: exact)
    rel_error: float
    cumulative_sqnr_db: float | None  # INT8 graph vs twin at this tensor (everything up to here)
    cumulative_rel_error: float
    kept_fp32_output_sqnr_db: float | None = None  # model output SQNR with only this node kept FP32
    kept_fp32_output_gain_db: float | None = None  # ... minus the all-INT8 output SQNR

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LayerwiseReport:
    model: str
    samples: int
    layers: list[LayerDrift]  # worst (lowest local SQNR) first
    output: str  # the model output the end-to-end numbers refer to
    output_sqnr_db: float | None  # INT8 model output vs FP32 twin output
    weights_total: int
    weights_restored: int  # weights compared against original FP32 values (the rest: dequantized)
    notes: list[str] = field(default_factory=list)

    def worst(self, n: int = 5) -> list[str]:
        """Names of the n nodes whose quantization adds the most error: candidates to keep in FP32."""
        return [layer.node for layer in self.layers[:n]]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = [layer.to_dict() for layer in self.layers]
        return d


# --------------------------------------------------------------------------------------- execution
class _Stats:
    """Running sums for SQNR / relative error of one tensor over several inputs."""

    __slots__ = ("signal", "noise")

    def __init__(self) -> None:
        self.signal = 0.0
        self.noise = 0.0

    def add(self, ref: np.ndarray, other: np.ndarray) -> None:
        ref = ref.astype(np.float64)
        self.signal += float(np.sum(ref * ref))
        self.noise += float(np.sum((ref - other.astype(np.float64)) ** 2))

    def sqnr_db(self) -> float | None:
        if self.noise == 0:
            return None
        if self.signal == 0:
            return -math.inf
        return 10.0 * math.log10(self.signal / self.noise)

    def rel_error(self) -> float:
        return (
            math.sqrt(self.noise / self.signal) if self.signal > 0 else (0.0 if self.noise == 0 else math.inf)
        )


def output_sqnr_db(reference: np.ndarray, other: np.ndarray) -> float | None:
    stats = _Stats()
    stats.add(reference, other)
    return stats.sqnr_db()


def layerwise_drift(
    int8_model: Any,
    inputs: np.ndarray,
    *,
    weights: Mapping[str, np.ndarray] | None = None,
    verify_top: int = 0,
    threads: int = 1,
) -> LayerwiseReport:
    """Per-layer SQNR of an INT8 QDQ ONNX model against its FP32 twin on `inputs` (prepared NCHW float32).

    `weights` (from `reference_weights`) lets the twin use the original FP32 weights. `verify_top` > 0
    also measures, for that many of the worst layers, the model-output SQNR when only that layer is
    kept in FP32 (one extra session per layer).
    """
    label = str(int8_model) if not hasattr(int8_model, "graph") else "<model>"
    model = load_model(int8_model)
    graph = QdqGraph(model)
    qnodes = graph.quantized_nodes()
    if not graph.dq or not qnodes:
        raise InputError(
            f"{label} has no QuantizeLinear/DequantizeLinear nodes",
            "--layerwise needs an INT8 (QDQ) ONNX model",
        )
    if len(inputs) == 0:
        raise InputError("no inputs for the layerwise comparison", "use a data set with images")
    float_names = float_tensors(model)
    compared = [o for n in qnodes for o in n.output if o and o in float_names]
    final = model.graph.output[0].name

    twin, restored, total = float_twin(model, weights)
    local_map = add_local_copies(twin, graph, float_names)
    expose_outputs(twin, [*compared, *local_map, final])
    q_model = copy.deepcopy(model)
    expose_outputs(q_model, [*compared, final])
    twin_sess = session(twin, threads, optimization="basic")
    q_sess = session(q_model, threads, optimization="basic")
    twin_names = [o.name for o in twin_sess.get_outputs()]
    q_names = [o.name for o in q_sess.get_outputs()]

    local = {name: _Stats() for name in compared}
    cumulative = {name: _Stats() for name in compared}
    out_stats = _Stats()
    twin_final, q_final = [], []
    for feed, real in feed_batches(twin_sess, inputs):
        t = dict(zip(twin_names, twin_sess.run(twin_names, feed), strict=True))
        q = dict(zip(q_names, q_sess.run(q_names, feed), strict=True))
        for local_name, orig in local_map.items():
            local[orig].add(t[orig][:real], t[local_name][:real])
        for name in compared:
            cumulative[name].add(t[name][:real], q[name][:real])
        out_stats.add(t[final][:real], q[final][:real])
        twin_final.append(t[final][:real])
        q_final.append(q[final][:real])

    producer = graph.producer
    layers = []
    for name in compared:
        node = producer[name]
        layers.append(
            LayerDrift(
                node=node.name or name,
                op_type=node.op_type,
                output=name,
                module=torch_module_of(node),
                sqnr_db=local[name].sqnr_db(),
                rel_error=local[name].rel_error(),
                cumulative_sqnr_db=cumulative[name].sqnr_db(),
                cumulative_rel_error=cumulative[name].rel_error(),
            )
        )
    # Worst first: lowest local SQNR (exact = None goes last); a node with several outputs keeps its worst.
    layers.sort(key=lambda r: math.inf if r.sqnr_db is None else r.sqnr_db)
    seen, unique = set(), []
    for layer in layers:
        if layer.node not in seen:
            seen.add(layer.node)
            unique.append(layer)
    notes = []
    if restored < total:
        notes.append(
            f"{total - restored} of {total} quantized constants have no FP32 original in the reference (e.g. "
            "constants the exporter created or folded): they enter the FP32 twin at their dequantized values, "
            "so their rounding error is not counted"
        )
    base_sqnr = out_stats.sqnr_db()
    if verify_top > 0:
        reference_out = np.concatenate(twin_final)
        for layer in unique[:verify_top]:
            kept = keep_fp32(model, [layer.node], weights=weights)
            layer.kept_fp32_output_sqnr_db = output_sqnr_db(reference_out, run_outputs(kept, inputs, threads))
            if layer.kept_fp32_output_sqnr_db is not None and base_sqnr is not None:
                layer.kept_fp32_output_gain_db = layer.kept_fp32_output_sqnr_db - base_sqnr
        # Local SQNR finds candidates; what the user acts on is the measured effect on the model output.
        # A layer with a poor local SQNR can matter little downstream (a residual dilutes it), so the
        # verified layers are ordered by the output gain of keeping each in FP32, best first.
        verified = sorted(
            unique[:verify_top],
            key=lambda r: -math.inf if r.kept_fp32_output_gain_db is None else r.kept_fp32_output_gain_db,
            reverse=True,
        )
        unique = verified + unique[verify_top:]
    return LayerwiseReport(
        model=label,
        samples=len(inputs),
        layers=unique,
        output=final,
        output_sqnr_db=base_sqnr,
        weights_total=total,
        weights_restored=restored,
        notes=notes,
    )
