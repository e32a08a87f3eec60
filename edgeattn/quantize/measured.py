"""`--placement measured`: keep INT8 only where it is faster, measured in the whole model on the runtime.

Whether a layer is faster in INT8 depends on the CPU, the runtime's kernels and the layer's
neighbours (a fused int8 conv needs int8 inputs and outputs; every break costs Q/DQ and layout
changes), so a rule of thumb like the 256-MACs threshold is right on one CPU and wrong on another.
This times it instead: every conv and linear layer is a candidate (PTQ quantizes them all), the
candidates are grouped by kind and stage (convs, depthwise convs, attention / MLP linears, head; per
stage, and by the rule of thumb's decision). The search starts from the rule-of-thumb placement
(thin and depthwise convs float, the rest INT8), and for each group in turn the current model is
timed against the same model with that group flipped (INT8 <-> float; interleaved rounds, batch 1,
`timing.PLACEMENT_TIMERS`). The flip stays only where it was measurably faster (the 95 % interval
of the paired ratio excludes 1.0); the next group is timed in the model that decision left (greedy,
in context), so the result is never a measured step back from the rules. Before the groups, the rules'
placement is timed against everything INT8 as whole models, and the search starts from the one that
is measurably faster: layers interact, so flipping one group at a time can stay stuck where flipping
them together wins (efficientformer_l1 at 224²: each thin-conv group was slower alone in INT8, all of
them together were faster). The variants are exported from the NNCF model with the group's quantizers disabled, so no
ONNX names need matching; the final model is that same NNCF model with the float groups' quantizers
deleted (`without_float_groups`), so what is saved is exactly the graph that was timed.
"""

from __future__ import annotations

import copy
import re
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import onnx
from torch import nn

from edgeattn.progress import make_progress
from edgeattn.quantize.onnx_export import exportable_copy, quantized_onnx
from edgeattn.quantize.placement import LayerPlan, PlacementPolicy, Plan
from edgeattn.quantize.result import GroupDecision
from edgeattn.quantize.sensitivity import layer_quantizers
from edgeattn.quantize.timing import PlacementTimer, paired_ratio

# NNCF op types a quantizer's value passes through unchanged in scale (quantizers propagate over them),
# so a quantizer at a producer serves the compute ops behind them.
AGNOSTIC_OPS = frozenset(
    {
        "reshape",
        "view",
        "flatten",
        "transpose",
        "permute",
        "contiguous",
        "squeeze",
        "unsqueeze",
        "__getitem__",
        "chunk",
        "split",
        "unbind",
        "cat",
        "max_pool2d",
        "dropout",
        "pad",
        "expand",
        "repeat",
    }
)
# Timed graphs have a dynamic batch axis like every exported artifact: with a static batch of 1
# onnxruntime rewrites MatMul+Add into Gemm before its QDQ fusion, so the int8 linears of a static
# graph ran as float Gemm behind per-run weight DequantizeLinear (efficientformer_l1 at 224²: 32 ms,
# where the exported INT8 model runs 18 ms), and the placement decisions followed that artefact.
DEPLOYED_BATCH = (1, None)
MAX_GROUPS = 14  # more (kind, stage) groups than this (or than the budget allows): group by kind only
ORDER = ("depthwise conv", "conv", "1x1 conv", "attention", "mlp", "linear", "head")
_ROLES = (
    ("head", re.compile(r"^(head|classifier)\w*$|^fc$")),
    ("attention", re.compile(r"attn|attention|token_mixer|qkv")),
    ("mlp", re.compile(r"^(mlp|ffn|fc\d)$")),
)


def layer_kind(name: str, module: nn.Module) -> str:
    """`depthwise conv`, `1x1 conv`, `conv` (k x k) or `linear`, prefixed by the block role where the
    module path says it: `attention linear`, `mlp 1x1 conv`, `head linear`."""
    if isinstance(module, nn.Conv2d):
        if module.groups > 1 and module.groups == module.in_channels:
            op = "depthwise conv"
        elif tuple(module.kernel_size) == (1, 1):
            op = "1x1 conv"
        else:
            op = "conv"
    else:
        op = "linear"
    parts = name.lower().split(".")
    if op != "depthwise conv":
        for role, pattern in _ROLES:
            if any(pattern.search(p) for p in (parts if role != "head" else parts[:1])):
                return f"{role} {op}"
    return op


def stage_of(name: str) -> str:
    """The block a layer belongs to: the module path up to its first index (`stages.2` of
    `stages.2.1.transformer.0.attn.qkv`), or its first component (`features` of `features.3`)."""
    parts = name.split(".")
    for i in range(1, len(parts) - 1):
        if parts[i].isdigit():
            return ".".join(parts[: i + 1])
    return parts[0]


@dataclass
class LayerGroup:
    kind: str
    stage: str
    layers: list[LayerPlan] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.kind} @ {self.stage}" if self.stage else self.kind

    @property
    def layer_names(self) -> set[str]:
        return {layer.name for layer in self.layers}


def group_layers(
    model: nn.Module, plan: Plan, max_groups: int = MAX_GROUPS, policy: PlacementPolicy | None = None
) -> list[LayerGroup]:
    """The INT8 layers of `plan` grouped by (kind, stage), or by kind alone when that makes more than
    `max_groups` (at most MAX_GROUPS), and split by `policy`'s rule-of-thumb decision (a group's
    layers start float or INT8 together: "1x1 conv (thin)" holds those the rule keeps float);
    ordered so the kinds most often slower in INT8 (depthwise, thin convs) are timed first."""
    modules = dict(model.named_modules())

    def kind_of(p: LayerPlan) -> str:
        kind = layer_kind(p.name, modules[p.name])
        if policy is not None and not policy.layer_decision(modules[p.name])[0]:
            kind += " (thin)" if "depthwise" not in kind else ""
        return kind

    keyed = [(kind_of(p), stage_of(p.name), p) for p in plan.int8_layers]
    by_stage = len({(k, s) for k, s, _ in keyed}) <= min(max_groups, MAX_GROUPS)
    groups: dict[tuple[str, str], LayerGroup] = {}
    for kind, stage, p in keyed:
        key = (kind, stage if by_stage else "")
        groups.setdefault(key, LayerGroup(*key)).layers.append(p)

    def rank(g: LayerGroup) -> tuple[int, int]:
        base = next((i for i, k in enumerate(ORDER) if g.kind.replace(" (thin)", "").endswith(k)), len(ORDER))
        return base, [p.name for p in plan.int8_layers].index(g.layers[0].name)

    return sorted(groups.values(), key=rank)


def float_quantizers(model: nn.Module, graph: Any, plan: Plan, float_layers: set[str]) -> list[nn.Module]:
    """The quantizers of `model` to disable so the layers in `float_layers` compute in float: their
    input and weight quantizers, and quantizers at a producer's output (shared, or kept for a conv's
    fused output) that no remaining INT8 layer reads."""
    from nncf.torch.function_hook.hook_storage import decode_hook_name
    from nncf.torch.function_hook.wrapper import get_hook_storage
    from nncf.torch.quantization.layers import BaseQuantizer

    floats = [p for p in plan.int8_layers if p.name in float_layers]
    float_ops = {op for p in floats for op in p.op_names}
    int8_ops = {op for p in plan.int8_layers if p.name not in float_layers for op in p.op_names}
    fused_outputs_of_floats = {o for p in floats for o in p.output_points}
    chosen = [q for p in floats for q in layer_quantizers(model, p)]
    for hook, module in get_hook_storage(model).named_hooks():
        if not isinstance(module, BaseQuantizer) or module in chosen:
            continue
        kind, op, _ = decode_hook_name(hook)
        if kind != "post_hooks":
            continue
        readers = _compute_readers(graph, op, float_ops | int8_ops)
        if not readers & int8_ops and (readers & float_ops or op in fused_outputs_of_floats):
            chosen.append(module)
    return chosen


def _compute_readers(graph: Any, op: str, compute_ops: set[str]) -> set[str]:
    """Compute ops that read `op`'s output directly or through quantization-agnostic ops."""
    found: set[str] = set()
    if op not in {n.node_name for n in graph.get_all_nodes()}:
        # a hook's own op (SmoothQuant's `mul` inside a compute op's input hook): its name embeds the op
        return {c for c in compute_ops if c.replace("/", "-") in op}
    todo = [graph.get_node_by_name(op)]
    seen: set[str] = set()
    while todo:
        for nxt in graph.get_next_nodes(todo.pop()):
            if nxt.node_name in seen:
                continue
            seen.add(nxt.node_name)
            if nxt.node_name in compute_ops:
                found.add(nxt.node_name)
            elif nxt.node_type in AGNOSTIC_OPS:
                todo.append(nxt)
    return found


def variant_onnx(
    qmodel: nn.Module, graph: Any, plan: Plan, float_layers: set[str], input_shape: tuple[int, ...]
) -> onnx.ModelProto:
    """The INT8 ONNX of `qmodel` with `float_layers` (and only their Q/DQ) in float."""
    module = exportable_copy(qmodel)
    for q in float_quantizers(module, graph, plan, float_layers):
        q.disable_quantization()
    return quantized_onnx(module, input_shape, dynamic_batch=True)  # as exported (see DEPLOYED_BATCH)


def without_float_groups(qmodel: nn.Module, graph: Any, plan: Plan, float_layers: set[str]) -> nn.Module:
    """A copy of `qmodel` with the quantizers of `float_layers` deleted (not disabled, so a saved
    checkpoint has them gone too): exactly the graph `variant_onnx` timed for these decisions.

    Re-quantizing with the float layers in NNCF's ignored scope instead moves other quantizers (NNCF
    propagates them differently around an ignored layer): measured on efficientformer_l1 at 224², that
    model's GELUs no longer fused on onnxruntime and it ran 29 ms where the timed variant ran 16 ms."""
    from nncf.torch.function_hook.wrapper import get_hook_storage

    module = copy.deepcopy(qmodel)
    doomed = {id(q) for q in float_quantizers(module, graph, plan, float_layers)}
    storage = get_hook_storage(module)
    for name, hook in list(storage.named_hooks(remove_duplicate=False)):
        if id(hook) in doomed:
            storage.delete_hook(name)
    return module


@dataclass
class GroupOutcome:
    keep_float: dict[str, str]  # layer -> why it stays float
    groups: list[GroupDecision]


def measure_groups(
    qmodel: nn.Module,
    graph: Any,
    plan: Plan,
    input_shape: tuple[int, ...],
    timer: PlacementTimer,
    seconds: float,
    fallback: PlacementPolicy,
) -> GroupOutcome:
    """Decide each group of `plan`'s layers by timing (greedy, in context; see the module docstring).

    The search starts from `fallback`'s rule-of-thumb placement (its thin and depthwise convs float,
    the rest INT8) and flips a group only where the flipped model was faster, so it can only improve on
    the rules; groups not reached within `seconds` keep the rule's decision."""
    modules = dict(qmodel.named_modules())
    start = time.perf_counter()
    end = start + seconds
    rule_float = {p.name for p in plan.int8_layers if not fallback.layer_decision(modules[p.name])[0]}
    floats: set[str] = set(rule_float)
    decisions: list[GroupDecision] = []
    current = variant_onnx(qmodel, graph, plan, floats, input_shape)
    # Per (kind, stage) where the budget allows an export and a few timing rounds for each; else per kind.
    per_group = 2 * (time.perf_counter() - start) + 1.0
    groups = group_layers(qmodel, plan, max_groups=max(1, int(seconds // per_group)), policy=fallback)
    timer.time([current], min(3.0, 0.05 * seconds), min_rounds=2, max_rounds=3)  # warm-up, discarded
    why: dict[str, str] = {}
    if rule_float:
        first = _whole_flip(qmodel, graph, plan, input_shape, timer, rule_float, current, 0.15 * seconds)
        decisions.append(first.decision)
        if first.decision.kept == "int8":
            floats, current = set(), first.model
    with make_progress() as progress:
        task = progress.add_task("measured placement", total=len(groups), status="")
        for i, g in enumerate(groups):
            progress.update(task, status=g.name)
            left = end - time.perf_counter()
            row = {"group": g.name, "kind": g.kind, "stage": g.stage, "layers": sorted(g.layer_names)}
            was_int8 = not (g.layer_names & floats)
            if left <= 0:
                for name in g.layer_names & floats:
                    why[name] = f"--placement-budget spent before {g.name} was timed; {fallback.name} policy"
                decisions.append(
                    GroupDecision(
                        **row,
                        int8_ms=None,
                        float_ms=None,
                        speedup=None,
                        kept="int8" if was_int8 else "float",
                        note="not timed (budget spent): kept as the search started",
                    )
                )
                progress.update(task, advance=1)
                continue
            t0 = time.perf_counter()
            flipped = floats ^ g.layer_names
            candidate = variant_onnx(qmodel, graph, plan, flipped, input_shape)
            export_s = time.perf_counter() - t0
            remaining = len(groups) - i
            share = max(0.3, (end - time.perf_counter() - export_s * (remaining - 1)) / remaining)
            times = timer.time([current, candidate], share)
            int8_times, float_times = (times[0], times[1]) if was_int8 else (times[1], times[0])
            int8_ms, float_ms = statistics.median(int8_times), statistics.median(float_times)
            ratio = paired_ratio(float_times, int8_times)  # > 1: the group is faster in INT8
            # Flip only where the flip is measurably faster (its 95 % interval excludes 1.0); a
            # difference within the noise keeps the rules' decision.
            flip = ratio.high < 1.0 if was_int8 else ratio.low > 1.0
            kept = ("float" if was_int8 else "int8") if flip else ("int8" if was_int8 else "float")
            if (kept == "int8") != was_int8:
                floats, current = flipped, candidate
            for name in g.layer_names:
                why.pop(name, None)
                if kept == "float":
                    why[name] = (
                        f"measured: {g.name} in float {float_ms:.2f} ms < INT8 {int8_ms:.2f} ms (whole model)"
                        if flip
                        else f"measured: {g.name} not faster in INT8 ({ratio.median:.2f}x, 95 % "
                        f"{ratio.low:.2f}–{ratio.high:.2f}); {fallback.name} rule keeps it float"
                    )
            decisions.append(
                GroupDecision(
                    **row,
                    int8_ms=round(int8_ms, 3),
                    float_ms=round(float_ms, 3),
                    **ratio.report_fields(),
                    rounds=len(times[0]),
                    kept=kept,
                    note="" if was_int8 else "float by the rule of thumb; timed INT8",
                )
            )
            progress.update(task, advance=1)
    per_group = [i for i, d in enumerate(decisions) if d.kind != "whole model"]
    if per_group and all(decisions[i].kept == "float" for i in per_group):
        # No group was faster in INT8: keep the least slow one INT8 so an INT8 model still exists (the
        # verdict then recommends FP32 for this CPU).
        best = max(per_group, key=lambda i: decisions[i].speedup or 0.0)
        decisions[best].kept = "int8"
        decisions[best].note = "slower in INT8 too, kept so an INT8 model exists (FP32 is recommended)"
        floats -= set(decisions[best].layers)
    return GroupOutcome({name: why.get(name, f"{fallback.name} policy") for name in floats}, decisions)


@dataclass
class _Start:
    decision: GroupDecision
    model: onnx.ModelProto


def _whole_flip(
    qmodel: nn.Module,
    graph: Any,
    plan: Plan,
    input_shape: tuple[int, ...],
    timer: PlacementTimer,
    rule_float: set[str],
    rules_model: onnx.ModelProto,
    seconds: float,
) -> _Start:
    """The rules' placement against everything INT8, timed as whole models before any group is
    flipped: layers interact (a float layer between INT8 ones costs Q/DQ and layout changes both
    sides), so one group flipped at a time can stay stuck where all of them flipped together win.
    Measured on efficientformer_l1 at 224² (GELU fused): flipping its thin convs one group at a time
    was slower each time (0.85x, 0.96x), all layers INT8 together ran 1.25x faster than the rules."""
    everything = variant_onnx(qmodel, graph, plan, set(), input_shape)
    times = timer.time([rules_model, everything], seconds)
    ratio = paired_ratio(times[0], times[1])  # > 1: everything INT8 is faster
    kept = "int8" if ratio.above_one else "float"
    return _Start(
        GroupDecision(
            group="start: every rule-float layer",
            kind="whole model",
            stage="",
            layers=sorted(rule_float),
            int8_ms=round(statistics.median(times[1]), 3),
            float_ms=round(statistics.median(times[0]), 3),
            **ratio.report_fields(),
            rounds=len(times[0]),
            kept=kept,
            note="the search starts from everything INT8"
            if kept == "int8"
            else "the search starts from the rules",
        ),
        everything,
    )
