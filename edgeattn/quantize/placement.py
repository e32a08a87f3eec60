"""Where INT8 goes: Q/DQ placement chosen for the runtime, and for the CPU, that will serve the model.

INT8 is not automatically faster. On onnxruntime's x86 CPU kernels an int8 Conv only runs as one
fused QLinearConv when its input, weight *and output* are quantized, and every fused conv pays for
NHWC layout changes and Q/DQ of its neighbours; depthwise and thin convs (few MACs per output
element) lose more to that overhead than their int8 arithmetic saves. Measured on a 2-core AVX2 CPU
without VNNI (batch 1): quantizing every op like `onnxruntime.quantization.quantize_static` made
mobilevit_xxs ~1.8x and efficientformer_l1 ~1.4x *slower* than FP32, while int8 only for convs with
>= 256 MACs per output element (with their outputs quantized) plus the linear layers ran
efficientformer_l1 and attn_vgg16 ~25-30 % faster than FP32 and mobilevit_xxs at FP32 speed.

The CPU decides the formats (`ONNXRUNTIME_CPU_VARIANTS`, one row per `edgeattn.device.cpu` kind;
`choose_policy` picks the row from this machine's flags, a device's recorded facts, or `--cpu-int8`):
- vnni (x86 AVX-512 VNNI / AVX-VNNI / AMX) and arm-dotprod (ARM dotprod / i8mm): full 8-bit weights;
  the dot-product instructions add into int32 and do not saturate. On vnni `--preset auto` means
  mixed: asymmetric uint8 activations with symmetric per-channel int8 weights, onnxruntime's fast x86
  format (U8S8, what its quantization docs advise for x86; it converts signed int8 activation Q/DQ to
  uint8 at load anyway, so symmetric int8 activations only waste half the uint8 range on GELU and
  attention outputs that are not ReLU-bounded).
- avx2 (x86 without VNNI) and none: 7-bit weights (NNCF OverflowFix), because AVX2's u8*s8 kernel
  adds pairs of products in int16 and saturates with full-range weights.
The MAC threshold and conv output quantizers are the same everywhere. Measured on AMD EPYC (2 cores,
AVX-512 VNNI, onnxruntime 1.32, batch 1, interleaved rounds on a shared machine; FP32/INT8 speed,
median and 95 % interval): 8-bit and 7-bit weights run at the same speed (mobilevit_xxs 0.74x vs
0.76x, efficientformer_l1 0.84x vs 0.85x, attn_vgg16 1.52x vs 1.47x); INT8 for every conv is slower
(0.46x, 0.75x), without conv output quantizers slower still for efficientformer_l1 (0.64x); a 64-MAC
threshold 0.70x for mobilevit_xxs. Asymmetric uint8 activations (`--preset mixed`) were fastest
(0.88x, 1.05x). README "INT8 formats per CPU" has the table.

A `PlacementPolicy` decides per layer (Conv2d / Linear module) whether it is INT8, and whether the
fused-kernel pattern needs an output quantizer after conv (+BN) (+ReLU). The same placement is used
by the torch (NNCF fake-quant) model and its exported ONNX, so both compute the same thing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from torch import nn

from edgeattn.device.cpu import CPU_INT8_KINDS, cpu_int8
from edgeattn.errors import InputError
from edgeattn.registry import Registry


@dataclass(frozen=True)
class CpuVariant:
    """What one kind of CPU (`edgeattn.device.cpu.CPU_INT8_KINDS`) changes in a runtime's policy: the
    weight format. The MAC threshold and conv output quantizers were measured best on every CPU kind
    tried (module docstring), so they stay the runtime's own."""

    weights_7bit: bool
    formats: str  # what it uses there and why, for the report: "8-bit weights and uint8 activations (...)"
    preset: str = "performance"  # the NNCF preset `--preset auto` means on this CPU


@dataclass(frozen=True)
class PlacementPolicy:
    name: str
    description: str
    min_macs_per_output: int = 0  # a conv is INT8 only if in_channels/groups * kh * kw >= this
    linear: bool = True  # nn.Linear layers (constant weights) are INT8
    conv_output_quantizers: bool = False  # quantize conv(+BN)(+ReLU) outputs so the runtime fuses them
    # x86 int8 kernels without VNNI (AVX2) add pairs of u8*s8 products in int16 and saturate with
    # full 8-bit weights; 7-bit weights (NNCF's OverflowFix) keep every pair sum in range.
    weights_7bit: bool = False
    # Activations: None lets NNCF choose (unsigned after ReLU, per-channel where it likes); a runtime
    # that takes only signed, per-tensor, symmetric int8 activations forces them.
    signed_per_tensor_activations: bool = False
    presets: tuple[str, ...] = ("performance", "mixed")  # NNCF presets whose Q/DQ this runtime loads
    preset_note: str = ""  # why a preset is missing from `presets`
    # CPU runtimes: the variant per kind of CPU int8 arithmetic (see `for_cpu`); empty: one policy.
    cpu_variants: Mapping[str, CpuVariant] = field(default_factory=dict, compare=False, hash=False)
    default_preset: str = "performance"  # what `--preset auto` resolves to (the CPU variant's choice)
    variant: str = ""  # the CPU variant this policy was resolved to ("vnni", "avx2", ...)
    reason: str = ""  # why this policy: the CPU evidence and the formats it implies

    @property
    def label(self) -> str:
        """`onnxruntime/vnni`, or the runtime's name where the CPU does not matter (`tensorrt`)."""
        return f"{self.name}/{self.variant}" if self.variant else self.name

    def for_cpu(self, kind: str, evidence: str) -> PlacementPolicy:
        """This runtime's policy for a CPU of `kind`; `evidence` says how the kind was known."""
        if not self.cpu_variants:
            return replace(
                self, reason=f"{self.name} runs int8 in its own kernels; the host CPU does not matter"
            )
        v = self.cpu_variants[kind]
        return replace(
            self,
            variant=kind,
            weights_7bit=v.weights_7bit,
            default_preset=v.preset,
            reason=f"{evidence}, so {v.formats}",
        )

    def resolve_preset(self, preset: str) -> str:
        """The NNCF preset to use: `auto` is this policy's (CPU variant's) default."""
        return self.default_preset if preset == "auto" else preset

    def check_preset(self, preset: str) -> None:
        """Refuse a preset whose Q/DQ this runtime cannot load, before any work."""
        if self.resolve_preset(preset) not in self.presets:
            raise InputError(
                f"--preset {preset} cannot be used with --runtime {self.name}: {self.preset_note}",
                f"use --preset {' or '.join(self.presets)}",
            )

    def layer_decision(self, module: nn.Module) -> tuple[bool, str]:
        """(int8?, reason) for one compute layer."""
        if isinstance(module, nn.Linear):
            return (True, "int8") if self.linear else (False, f"linear layers stay float for {self.name}")
        if isinstance(module, nn.Conv2d):
            k = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            if k >= self.min_macs_per_output:
                return True, "int8"
            kind = (
                "depthwise conv" if module.groups > 1 and module.groups == module.in_channels else "thin conv"
            )
            return (
                False,
                f"{kind}: {k} MACs/output < {self.min_macs_per_output}, int8 does not pay off on {self.name}",
            )
        return False, "no int8 kernel"


# onnxruntime's CPU variants (measured numbers: module docstring). 7-bit weights only where the int8
# kernels saturate (AVX2 without VNNI); a CPU of unknown int8 arithmetic gets the policy safe everywhere.
_SATURATING = "7-bit weights (NNCF OverflowFix): AVX2's u8*s8 kernels add pairs of products in int16 and saturate with full 8-bit weights"
ONNXRUNTIME_CPU_VARIANTS: dict[str, CpuVariant] = {
    "vnni": CpuVariant(
        False,
        "8-bit int8 symmetric per-channel weights and asymmetric uint8 activations (--preset auto = mixed): "
        "onnxruntime's fast x86 format (U8S8); VNNI's int8 dot products add into int32 without "
        "saturating, and asymmetric uint8 activations were measured fastest on AVX-512 VNNI",
        preset="mixed",
    ),
    "arm-dotprod": CpuVariant(
        False,
        "8-bit weights (ARM sdot/udot kernels add into int32 without saturating; not measured by edgeattn)",
    ),
    "avx2": CpuVariant(True, _SATURATING),
    "none": CpuVariant(True, "the AVX2 policy, safe on every CPU kernel: " + _SATURATING),
}
assert set(ONNXRUNTIME_CPU_VARIANTS) == set(CPU_INT8_KINDS)

PLACEMENTS: Registry[PlacementPolicy] = Registry("quantization placement (runtime)")
PLACEMENTS.register(
    "onnxruntime",
    PlacementPolicy(
        "onnxruntime",
        "onnxruntime CPU: linear layers and convs with many MACs/output in INT8 (fused QLinearConv), "
        "depthwise/thin convs, norms, activations, softmax and reshapes in float",
        min_macs_per_output=256,
        conv_output_quantizers=True,
        weights_7bit=True,
        cpu_variants=ONNXRUNTIME_CPU_VARIANTS,
    ),
)
PLACEMENTS.register(
    "tensorrt",
    PlacementPolicy(
        "tensorrt",
        "TensorRT: every conv and linear layer INT8 (Q/DQ on inputs; TensorRT fuses and picks output "
        "precision), activations signed per-tensor symmetric int8 (zero points 0), as TensorRT's ONNX parser needs",
        min_macs_per_output=0,
        conv_output_quantizers=False,
        signed_per_tensor_activations=True,
        presets=("performance",),
        preset_note="mixed makes asymmetric activations (non-zero zero points), which TensorRT's ONNX parser "
        "rejects ('only supports symmetric quantization')",
    ),
)

CPU_INT8_CHOICES = ("auto", *CPU_INT8_KINDS)


def choose_policy(
    runtime: str, cpu_int8_kind: str = "auto", cpu: Mapping[str, Any] | None = None, owner: str | None = None
) -> PlacementPolicy:
    """The placement for `runtime` on the CPU that will run the model: detected from `cpu` (a facts
    block, e.g. a device's; this machine's when None) when `cpu_int8_kind` is "auto", else as given.
    `owner` names whose CPU `cpu` is in the reason (e.g. "device ssh://pi@host")."""
    base = PLACEMENTS.get(runtime)
    if cpu_int8_kind not in CPU_INT8_CHOICES:
        raise InputError(
            f"--cpu-int8 {cpu_int8_kind} is not a kind of CPU int8 arithmetic",
            f"use one of: {', '.join(CPU_INT8_CHOICES)}",
        )
    if not base.cpu_variants:
        return base.for_cpu("", "")
    if cpu_int8_kind != "auto":
        return base.for_cpu(
            cpu_int8_kind, f"--cpu-int8 {cpu_int8_kind} was given ({CPU_INT8_KINDS[cpu_int8_kind]})"
        )
    found = cpu_int8(cpu)
    if cpu is None:
        where = f"this CPU ({found.model})" if found.model else "this CPU"
    elif owner:
        where = f"{owner} ({found.model})" if found.model else owner
    else:
        where = found.model or "the device's CPU"
    return base.for_cpu(found.kind, f"{where} {found.evidence()}")


COMPUTE_TYPES = (nn.Conv2d, nn.Linear)
OP_TYPES = {"conv2d", "linear"}
# Ops that may sit between a conv and the quantizer of its output without blocking kernel fusion.
FUSABLE_AFTER_CONV = {"batch_norm": {"batch_norm"}, "relu": {"relu", "relu_"}}


@dataclass
class LayerPlan:
    name: str  # module path
    type: str  # Conv2d | Linear
    params: int
    int8: bool
    reason: str
    op_names: list[str] = field(default_factory=list)  # NNCF op nodes that call this module
    output_points: list[str] = field(default_factory=list)  # ops whose output gets a fusion quantizer

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    policy: str
    layers: list[LayerPlan]
    ignored_ops: list[str]  # every NNCF op node that must not get input quantizers
    output_points: list[str]  # NNCF op names whose output (port 0) gets a quantizer for fusion

    @property
    def int8_layers(self) -> list[LayerPlan]:
        return [layer for layer in self.layers if layer.int8]


def compute_layers(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if isinstance(m, COMPUTE_TYPES)}


def match_patterns(names: list[str], patterns: list[str]) -> dict[str, list[str]]:
    """pattern -> module names it matches (fnmatch, or a module path prefix)."""
    out: dict[str, list[str]] = {}
    for pat in patterns:
        out[pat] = [
            n for n in names if fnmatch.fnmatchcase(n, pat) or n == pat or n.startswith(pat.rstrip(".") + ".")
        ]
    return out


def build_plan(
    model: nn.Module,
    graph: Any,
    policy: PlacementPolicy,
    ignored: list[str] | tuple[str, ...] = (),
    keep_float: dict[str, str] | None = None,
) -> Plan:
    """Decide every compute layer of `model` from its NNCF graph (built on an example input)."""
    layers = compute_layers(model)
    ops_of: dict[str, list[str]] = {}
    for node in graph.get_all_nodes():
        if node.node_type in OP_TYPES:
            weight = _weight_name(graph, node)
            if weight and weight.rsplit(".", 1)[0] in layers:
                ops_of.setdefault(weight.rsplit(".", 1)[0], []).append(node.node_name)
    ignored_by_user = {n for names in match_patterns(list(layers), list(ignored)).values() for n in names}
    keep_float = keep_float or {}
    plans: list[LayerPlan] = []
    for name, module in layers.items():
        int8, reason = policy.layer_decision(module)
        if name not in ops_of:
            int8, reason = False, "not called in forward"
        elif name in ignored_by_user:
            int8, reason = False, "--ignored"
        elif int8 and name in keep_float:
            int8, reason = False, keep_float[name]
        plans.append(
            LayerPlan(
                name,
                type(module).__name__,
                sum(p.numel() for p in module.parameters()),
                int8,
                reason,
                ops_of.get(name, []),
            )
        )
    selected = {op for p in plans if p.int8 for op in p.op_names}
    ignored_ops = [
        n.node_name
        for n in graph.get_all_nodes()
        if n.node_name not in selected
        and n.node_type not in ("nncf_model_const", "nncf_model_input", "nncf_model_output")
    ]
    points: list[str] = []
    if policy.conv_output_quantizers:
        for p in plans:
            if p.int8 and p.type == "Conv2d":
                p.output_points = [_fusion_output_point(graph, op) for op in p.op_names]
                points += p.output_points
    return Plan(policy.name, plans, ignored_ops, points)


def _weight_name(graph: Any, node: Any) -> str | None:
    for edge in graph.get_input_edges(node):
        if edge.input_port_id == 1 and edge.from_node.node_type == "nncf_model_const":
            return edge.from_node.layer_attributes.name
    return None


def _fusion_output_point(graph: Any, op_name: str) -> str:
    """The op after conv [-> batch_norm] [-> relu] whose output a fused int8 conv kernel produces."""
    node = graph.get_node_by_name(op_name)
    for stage in ("batch_norm", "relu"):
        nxt = graph.get_next_nodes(node)
        if (
            len(nxt) == 1
            and nxt[0].node_type in FUSABLE_AFTER_CONV[stage]
            and len(graph.get_output_edges(node)) == 1
        ):
            node = nxt[0]
    return node.node_name
