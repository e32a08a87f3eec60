"""TensorRT readiness check: the rules TensorRT's ONNX parser enforces, checked on the ONNX without TensorRT.

An engine build fails (or silently mis-quantizes) on a device for reasons that are visible in the graph:
an operator or opset the version's parser lacks, a uint8 or non-zero zero point ("TensorRT only supports
symmetric quantization"; 10.2+ only warns and reads uint8 as int8, clipping the top half of the range),
a zero or negative scale, per-channel weight scales on the wrong axis, per-channel activation scales,
a QuantizeLinear whose output is not dequantized, a dynamic dimension without an optimization profile.
`lint_onnx` runs every rule of `LINT_RULES` for one `TensorRTTarget` and names the failing nodes.

Polygraphy's `check lint` runs onnx.checker and onnxruntime (which every edgeattn export already does)
and its TensorRT checks need TensorRT itself, so these rules are written here against the parser's
documented behaviour (tensorrt_support/onnx-ops-*.txt and the Q/DQ restrictions there).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from edgeattn.errors import GateFailure
from edgeattn.export.tensorrt_versions import TensorRTTarget
from edgeattn.onnx.graph import (
    DQ_OP,
    Q_OP,
    QDQ_MIN_OPSET,
    STANDARD_DOMAINS,
    GraphView,
    attr,
    load_model,
    opset_of,
)
from edgeattn.registry import Registry


@dataclass(frozen=True)
class Profile:
    """The batch range the engine's optimization profile will cover (min == max: a fixed batch)."""

    min: int
    opt: int
    max: int

    @property
    def dynamic(self) -> bool:
        return self.min != self.max

    def text(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}" if self.dynamic else str(self.opt)


@dataclass(frozen=True)
class Finding:
    rule: str
    node: str  # node (or tensor) name; "" for the whole model
    message: str


@dataclass
class LintReport:
    tensorrt: dict[str, str]
    rules: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "tensorrt": self.tensorrt,
            "passed": self.passed,
            "rules": self.rules,
            "findings": [asdict(f) for f in self.findings],
        }

    def raise_if_failed(self, where: str) -> None:
        if self.passed:
            return
        shown = "; ".join(f"{f.node or 'model'}: {f.message}" for f in self.findings[:3])
        more = f" (+{len(self.findings) - 3} more)" if len(self.findings) > 3 else ""
        raise GateFailure(
            f"{where} is not ready for TensorRT {self.tensorrt['version']}: {shown}{more}",
            "see `edgeattn check tensorrt` for every finding",
        )


class _Constants:
    """Initializers and Constant-node outputs as arrays, converted only when a rule asks (weights can be
    hundreds of MB; the rules read scales, zero points and a few shapes)."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.protos: dict[str, onnx.TensorProto] = {t.name: t for t in model.graph.initializer}
        for node in model.graph.node:
            if node.op_type == "Constant" and node.output and attr(node, "value") is not None:
                self.protos[node.output[0]] = attr(node, "value")
        self.cache: dict[str, np.ndarray] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.protos

    def get(self, name: str) -> np.ndarray | None:
        if name not in self.protos:
            return None
        if name not in self.cache:
            self.cache[name] = onnx.numpy_helper.to_array(self.protos[name])
        return self.cache[name]

    def __getitem__(self, name: str) -> np.ndarray:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def elem_type(self, name: str) -> int | None:
        proto = self.protos.get(name)
        return None if proto is None else proto.data_type


class LintContext:
    """What every rule reads: the graph index, its constants, the target version and the profile."""

    def __init__(self, model: onnx.ModelProto, target: TensorRTTarget, profile: Profile | None) -> None:
        self.model = model
        self.view = GraphView(model)
        self.target = target
        self.profile = profile
        self.constants = _Constants(model)

    def qdq_nodes(self) -> Iterable[onnx.NodeProto]:
        return (n for n in self.model.graph.node if n.op_type in (Q_OP, DQ_OP))

    def name(self, node: onnx.NodeProto) -> str:
        return node.name or f"{node.op_type}({node.output[0] if node.output else '?'})"


LintRule = Callable[[LintContext], Iterable[Finding]]
LINT_RULES: Registry[LintRule] = Registry("TensorRT readiness rule")


def _rule(name: str) -> Callable[[LintRule], LintRule]:
    return LINT_RULES.register(name)  # type: ignore[return-value]


@_rule("opset")
def opset_in_range(ctx: LintContext) -> Iterable[Finding]:
    facts, opset = ctx.target.facts, opset_of(ctx.model)
    if not facts.opset_min <= opset <= facts.opset_max:
        yield Finding(
            "opset",
            "",
            f"opset {opset} is outside TensorRT {ctx.target.version}'s {facts.opset_min}..{facts.opset_max}; export with --opset {min(17, facts.opset_max)}",
        )
    if opset < QDQ_MIN_OPSET and any(True for _ in ctx.qdq_nodes()):
        yield Finding(
            "opset", "", f"Q/DQ with per-channel scales needs opset {QDQ_MIN_OPSET} or newer, not {opset}"
        )


@_rule("operators")
def supported_operators(ctx: LintContext) -> Iterable[Finding]:
    facts = ctx.target.facts
    for node in ctx.model.graph.node:
        if node.domain not in STANDARD_DOMAINS:
            yield Finding(
                "operators",
                ctx.name(node),
                f"{node.domain}::{node.op_type} is not an ONNX op (needs a TensorRT plugin)",
            )
        elif not facts.supports_op(node.op_type):
            state = "not supported" if node.op_type in facts.onnx_ops else "not in the operator list"
            yield Finding(
                "operators",
                ctx.name(node),
                f"{node.op_type} is {state} by TensorRT {ctx.target.version}'s ONNX parser",
            )


def _type_name(elem_type: int) -> str:
    return TensorProto.DataType.Name(elem_type).lower()


def _quantized_type(ctx: LintContext, node: onnx.NodeProto) -> int | None:
    """The integer type a QuantizeLinear produces / a DequantizeLinear reads (ONNX: the zero point's
    type; a QuantizeLinear without zero point makes uint8)."""
    if len(node.input) > 2 and node.input[2]:
        return ctx.constants.elem_type(node.input[2])
    if node.op_type == Q_OP:
        to = attr(node, "output_dtype", 0)
        return to or TensorProto.UINT8
    return ctx.constants.elem_type(node.input[0])


@_rule("qdq-types")
def qdq_types(ctx: LintContext) -> Iterable[Finding]:
    allowed = ctx.target.policy.qdq_types
    for node in ctx.qdq_nodes():
        elem = _quantized_type(ctx, node)
        if elem is None:
            continue
        name = _type_name(elem)
        if name not in allowed:
            yield Finding(
                "qdq-types",
                ctx.name(node),
                f"{node.op_type} uses {name}; TensorRT {ctx.target.version} takes {', '.join(allowed)} "
                "(uint8 activations: quantize with --runtime tensorrt, which makes them signed int8)",
            )


@_rule("zero-points")
def zero_points(ctx: LintContext) -> Iterable[Finding]:
    for node in ctx.qdq_nodes():
        if len(node.input) < 3 or not node.input[2]:
            continue
        zp = ctx.constants.get(node.input[2])
        if zp is None:
            yield Finding("zero-points", ctx.name(node), "the zero point is not a constant")
        elif np.any(zp.astype(np.int64) != 0):
            yield Finding(
                "zero-points",
                ctx.name(node),
                f"zero point {zp.reshape(-1)[:3].tolist()} is not 0: TensorRT only supports symmetric quantization "
                "(use --preset performance)",
            )


@_rule("scales")
def scales(ctx: LintContext) -> Iterable[Finding]:
    for node in ctx.qdq_nodes():
        scale = ctx.constants.get(node.input[1])
        if scale is None:
            yield Finding("scales", ctx.name(node), "the scale is not a build-time constant")
            continue
        bad = ~np.isfinite(scale) | (scale <= 0)
        if np.any(bad):
            yield Finding(
                "scales", ctx.name(node), f"{int(bad.sum())} scale value(s) are zero, negative or not finite"
            )
        if node.op_type == Q_OP and node.input[0] not in ctx.constants and scale.size > 1:
            yield Finding(
                "scales", ctx.name(node), "activations take one scale per tensor in TensorRT, not per channel"
            )


def _weight_axis(consumer: onnx.NodeProto, index: int, rank: int) -> int | None:
    """The output-channel axis TensorRT needs for a per-channel weight at input `index` of `consumer`."""
    if index != 1:
        return None
    if consumer.op_type == "Conv":
        return 0
    if consumer.op_type == "ConvTranspose":
        return 1
    if consumer.op_type == "Gemm":
        return 0 if attr(consumer, "transB", 0) else 1
    if consumer.op_type == "MatMul":
        return rank - 1
    return None


@_rule("weight-axis")
def weight_axis(ctx: LintContext) -> Iterable[Finding]:
    for node in ctx.model.graph.node:
        if node.op_type != DQ_OP or node.input[0] not in ctx.constants:
            continue
        scale = ctx.constants.get(node.input[1])
        if scale is None or scale.size <= 1:
            continue
        rank = len(ctx.constants.protos[node.input[0]].dims)
        axis = int(attr(node, "axis", 1)) % max(rank, 1)
        for consumer in ctx.view.consumers.get(node.output[0], []):
            for index, name in enumerate(consumer.input):
                want = _weight_axis(consumer, index, rank) if name == node.output[0] else None
                if want is not None and axis != want:
                    yield Finding(
                        "weight-axis",
                        ctx.name(node),
                        f"per-channel scales on axis {axis}, but {consumer.op_type} {ctx.name(consumer)} needs its output-channel axis {want}",
                    )


@_rule("qdq-pairs")
def qdq_pairs(ctx: LintContext) -> Iterable[Finding]:
    for node in ctx.model.graph.node:
        if node.op_type != Q_OP:
            continue
        users = ctx.view.consumers.get(node.output[0], [])
        odd = [u for u in users if u.op_type != DQ_OP]
        if odd or node.output[0] in ctx.view.outputs:
            what = ", ".join(sorted({u.op_type for u in odd})) or "a graph output"
            yield Finding(
                "qdq-pairs", ctx.name(node), f"its quantized output feeds {what}, not a DequantizeLinear"
            )


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str]:
    shape = value_info.type.tensor_type.shape
    return [
        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?")
        for d in shape.dim
    ]


@_rule("shapes")
def shapes(ctx: LintContext) -> Iterable[Finding]:
    inits = set(ctx.view.inits)
    for inp in ctx.model.graph.input:
        if inp.name in inits:
            continue
        dims = _dims(inp)
        if not dims:
            yield Finding("shapes", inp.name, "the input has no static rank")
            continue
        fixed_rest = [d for d in dims[1:] if not isinstance(d, int)]
        if fixed_rest:
            yield Finding(
                "shapes", inp.name, f"only the batch dimension may be dynamic, but the input is {dims}"
            )
        batch, profile = dims[0], ctx.profile
        if not isinstance(batch, int) and profile is None:
            yield Finding(
                "shapes",
                inp.name,
                f"dynamic batch {batch!r} needs an optimization profile: give --dynamic-batch MIN:OPT:MAX",
            )
        elif isinstance(batch, int) and profile is not None and (profile.dynamic or profile.opt != batch):
            yield Finding(
                "shapes",
                inp.name,
                f"the batch is fixed at {batch} but the profile asks for {profile.text()}: export with --dynamic-batch",
            )


@_rule("uint8")
def uint8_tensors(ctx: LintContext) -> Iterable[Finding]:
    """UINT8 may only be a network input or output; intermediate uint8 tensors fail to parse."""
    try:
        inferred = onnx.shape_inference.infer_shapes(ctx.model, strict_mode=False)
    except Exception:  # noqa: BLE001  best effort: the other rules still run
        return
    io = {t.name for t in list(ctx.model.graph.input) + list(ctx.model.graph.output)}
    qdq_outputs = {o for n in ctx.qdq_nodes() for o in n.output}  # reported by qdq-types
    for vi in inferred.graph.value_info:
        if vi.type.tensor_type.elem_type == TensorProto.UINT8 and vi.name not in io | qdq_outputs:
            producer = ctx.view.producer.get(vi.name)
            yield Finding("uint8", ctx.name(producer) if producer else vi.name, f"tensor {vi.name} is uint8")


def lint_onnx(
    model: onnx.ModelProto | Path | str, target: TensorRTTarget, profile: Profile | None = None
) -> LintReport:
    """Check `model` against every readiness rule for `target` (`profile`: the batch range to build for)."""
    model = load_model(model)
    ctx = LintContext(model, target, profile)
    report = LintReport(tensorrt=target.to_dict(), rules=LINT_RULES.names())
    for _, rule in LINT_RULES.items():
        report.findings += list(rule(ctx))
    return report


def profile_from_manifest(onnx_path: Path) -> Profile | None:
    """The batch range an edgeattn ONNX was exported for (its manifest), if it has one."""
    from edgeattn.errors import EdgeAttnError
    from edgeattn.manifest import manifest_path, read_manifest

    if not manifest_path(onnx_path).exists():
        return None
    try:
        batch = read_manifest(onnx_path, verify_hash=False).batch
    except EdgeAttnError:
        return None
    return Profile(int(batch["min"]), int(batch["opt"]), int(batch["max"]))


def check_file(onnx_path: Path | str, target: TensorRTTarget, profile: Profile | None = None) -> LintReport:
    """`lint_onnx` of a file; without `profile`, the batch range recorded in its manifest (if any)."""
    onnx_path = Path(onnx_path)
    model = load_model(onnx_path)
    return lint_onnx(model, target, profile or profile_from_manifest(onnx_path))
