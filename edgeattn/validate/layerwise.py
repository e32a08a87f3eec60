"""Where INT8 drift comes from: per-layer error of a QDQ ONNX model against its floating-point twin.

The floating-point twin is derived from the INT8 graph itself: every DequantizeLinear(QuantizeLinear(x))
becomes Identity(x) and every DequantizeLinear(int8 weight) becomes the FP32 weight (the original values
when a reference — a FP32 ONNX or a checkpoint's state dict — holds a tensor that rounds to exactly those
int8 values; otherwise the dequantized values, and the report says so). Twin and INT8 graph therefore
share every tensor name, whatever exporter or quantizer made the model, and no name matching between
two independently exported graphs is needed.

Two errors are measured per quantized node (a node with at least one input from a DequantizeLinear):
- local: the node run on the twin's FP32 activations, with only its own inputs/weights quantized
  (the same scales and zero points), against the twin's output. This is the error the node adds; it is
  what ranks the layers, since keeping the worst one in FP32 removes the most error at its source.
- cumulative: the INT8 graph's output tensor against the twin's (everything up to this node).
Both are SQNR in dB (higher is better) and relative L2 error. All quantized nodes are run in one
onnxruntime session (copies of the nodes are added to the twin), so the cost is two model runs per input.

`keep_fp32(model, nodes)` removes the named nodes' input Q/DQ (they run in FP32), so a user — or the
quantize stage's `--max-drop` loop — can check that keeping the worst layers in FP32 reduces the drift.
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeattn.errors import InputError
from edgeattn.quantize.onnx_passes import sort_nodes

Q_OP, DQ_OP = "QuantizeLinear", "DequantizeLinear"
QDQ_OPS = {Q_OP, DQ_OP}
# Ops that only move or select values: quantizers give them the scale of their input, so their input
# Q/DQ is the producer's quantization, not error they add; keeping one in FP32 changes nothing while
# its outputs are quantized again. They are not ranked.
MOVEMENT_OPS = {
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
LOCAL_SUFFIX = "__edgeattn_local"
FP32_SUFFIX = "__edgeattn_fp32"


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


# ------------------------------------------------------------------------------------ graph helpers
def _load(model: Any) -> Any:
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if not path.exists():
        raise InputError(f"ONNX model {path} does not exist", "check the path")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and friends
        raise InputError(f"cannot read ONNX model {path} ({type(exc).__name__})", "re-export it") from None


def _attr(node: Any, name: str, default: Any) -> Any:
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


class _Graph:
    """Index of one ONNX graph: producers, consumers, constants, and how each DequantizeLinear is fed."""

    def __init__(self, model: Any) -> None:
        import onnx.numpy_helper as nh

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
                value = _attr(n, "value", None)
                if value is not None:
                    self._constants[n.output[0]] = nh.to_array(value)
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

    def constant(self, name: str) -> np.ndarray:
        import onnx.numpy_helper as nh

        if name in self.initializers:
            return nh.to_array(self.initializers[name])
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
        if _attr(node, "block_size", 0):
            raise InputError(
                "blocked quantization (DequantizeLinear block_size) is not supported by --layerwise",
                "use per-tensor or per-channel INT8",
            )
        if scale.ndim == 1 and q.ndim > 0 and scale.size > 1:
            axis = int(_attr(node, "axis", 1)) % q.ndim
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


def _module_of(node: Any) -> str:
    """The torch module a node came from: dynamo's name_scopes metadata or a TorchScript-style name."""
    import ast

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


def _float_tensors(model: Any) -> set[str]:
    """Names of the FLOAT tensors of a graph (shape inference; unknown types are left out)."""
    import onnx

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


# ----------------------------------------------------------------------------- FP32 weight recovery
def _rounds_to(w: np.ndarray, deq: np.ndarray, step: np.ndarray) -> float | None:
    """Mean abs difference when `w` quantizes to exactly `deq` (within half a step), else None."""
    if w.shape != deq.shape:
        return None
    diff = np.abs(w.astype(np.float64) - deq)
    if np.mean(diff <= 0.5 * step * 1.001 + 1e-12) < 0.999:
        return None
    return float(diff.mean())


def _candidate_weights(reference: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, value in (reference or {}).items():
        arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        if arr.dtype.kind != "f" or arr.size == 0:
            continue
        out[name] = arr.astype(np.float32)
        if arr.ndim == 2:  # Linear weights appear transposed as MatMul initializers
            out[name + ".T"] = np.ascontiguousarray(arr.T).astype(np.float32)
    return out


def reference_weights(
    fp32_onnx: Any = None, state_dict: Mapping[str, Any] | None = None
) -> dict[str, np.ndarray]:
    """Candidate FP32 weights to recover the originals of quantized weights (from an ONNX and/or a state dict)."""
    found: dict[str, Any] = {}
    if fp32_onnx is not None:
        g = _Graph(_load(fp32_onnx))
        found.update({name: g.constant(name) for name in list(g.initializers) + list(g._constants)})
    if state_dict:
        found.update({f"state_dict:{k}": v for k, v in state_dict.items()})
    return _candidate_weights(found)


def _restore_weights(
    graph: _Graph, candidates: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], int]:
    """FP32 value for every weight DequantizeLinear output, and how many were original (not dequantized)."""
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for name, arr in candidates.items():
        by_shape.setdefault(tuple(arr.shape), []).append(name)
    values, restored = {}, 0
    for out, (kind, _, _) in graph.dq.items():
        if kind != "weight":
            continue
        deq, step = graph.dequantized(out)
        source = graph.dq_nodes[out].input[0]
        preferred = [n for n in (source.removesuffix("_quantized"), out) if n in candidates]
        best, best_err = None, math.inf
        for name in preferred + [n for n in by_shape.get(tuple(deq.shape), []) if n not in preferred]:
            err = _rounds_to(candidates[name], deq, step)
            if err is not None and err < best_err:
                best, best_err = name, err
                if name in preferred:
                    break
        if best is not None:
            values[out], restored = candidates[best].astype(np.float32), restored + 1
        else:
            values[out] = deq
    return values, restored


# ----------------------------------------------------------------------------------- graph surgery
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
    import onnx
    import onnx.helper as oh
    import onnx.numpy_helper as nh

    model = _load(model)
    graph = _Graph(model)
    values, restored = _restore_weights(graph, weights or {})
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
    import onnx
    import onnx.helper as oh
    import onnx.numpy_helper as nh

    model = copy.deepcopy(_load(model))
    graph = _Graph(model)
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
                values, _ = _restore_weights(graph, weights or {})
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
        from edgeattn.fileio import atomic_output

        with atomic_output(out) as tmp:
            onnx.save(model, str(tmp))
    return model


def _local_copies(twin: Any, graph: _Graph, float_names: set[str]) -> dict[str, str]:
    """Add to `twin` a copy of every quantized node fed with quantized twin activations.

    Returns {copy's output name: original output name} for the float outputs to compare.
    """
    import onnx.helper as oh

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


def _expose(model: Any, names: Iterable[str]) -> None:
    import onnx
    import onnx.helper as oh

    present = {o.name for o in model.graph.output}
    for name in names:
        if name not in present:
            model.graph.output.append(oh.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
            present.add(name)


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


def _session(model: Any, threads: int = 1) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # Basic level only: keeps every exposed tensor and does not fuse Q/DQ into integer kernels, so the
    # INT8 graph's intermediates are the simulated-quantization values the twin is compared with.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.log_severity_level = 3
    return ort.InferenceSession(
        model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def _batches(session: Any, inputs: np.ndarray) -> Iterable[tuple[dict[str, np.ndarray], int]]:
    """Feed dicts of the session's batch size (static batch: padded, with the real count)."""
    inp = session.get_inputs()[0]
    static = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None
    step = static or 1
    dtype = np.float16 if "float16" in inp.type else np.float32
    for i in range(0, len(inputs), step):
        x = inputs[i : i + step]
        real = len(x)
        if static and real < static:
            x = np.concatenate([x, np.repeat(x[-1:], static - real, axis=0)])
        yield {inp.name: np.ascontiguousarray(x, dtype=dtype)}, real


def run_outputs(model: Any, inputs: np.ndarray, threads: int = 1) -> np.ndarray:
    """First output of an ONNX model (proto or path) for a batch of prepared inputs."""
    session = _session(_load(model), threads)
    outs = [
        session.run([session.get_outputs()[0].name], feed)[0][:real]
        for feed, real in _batches(session, inputs)
    ]
    return np.concatenate(outs).astype(np.float32)


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
    model = _load(int8_model)
    graph = _Graph(model)
    qnodes = graph.quantized_nodes()
    if not graph.dq or not qnodes:
        raise InputError(
            f"{label} has no QuantizeLinear/DequantizeLinear nodes",
            "--layerwise needs an INT8 (QDQ) ONNX model",
        )
    if len(inputs) == 0:
        raise InputError("no inputs for the layerwise comparison", "use a data set with images")
    float_names = _float_tensors(model)
    compared = [o for n in qnodes for o in n.output if o and o in float_names]
    final = model.graph.output[0].name

    twin, restored, total = float_twin(model, weights)
    local_map = _local_copies(twin, graph, float_names)
    _expose(twin, [*compared, *local_map, final])
    q_model = copy.deepcopy(model)
    _expose(q_model, [*compared, final])
    twin_sess, q_sess = _session(twin, threads), _session(q_model, threads)
    twin_names = [o.name for o in twin_sess.get_outputs()]
    q_names = [o.name for o in q_sess.get_outputs()]

    local = {name: _Stats() for name in compared}
    cumulative = {name: _Stats() for name in compared}
    out_stats = _Stats()
    twin_final, q_final = [], []
    for feed, real in _batches(twin_sess, inputs):
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
                module=_module_of(node),
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


def rank_layers(int8_model: Any, inputs: np.ndarray, n: int = 5, **options: Any) -> list[str]:
    """The n node names to try keeping in FP32 first (for loops such as quantize --max-drop)."""
    return layerwise_drift(int8_model, inputs, **options).worst(n)
