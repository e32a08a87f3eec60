"""`--placement measured`: layer groups timed INT8 vs float in the whole model, INT8 kept only where it
wins. Checked here: the decisions recorded in the report are what the INT8 ONNX contains (float groups
have no Q/DQ on their inputs or weights, INT8 groups do), the model runs on onnxruntime, an
all-slower INT8 still yields an INT8 model with FP32 recommended, and the CLI success path with the
real onnxruntime timer. Speed itself is never asserted: decisions under the real timer are whatever
this machine measured; the deterministic decisions come from a cost-model timer that counts the
integer kernels in the real exported graph.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx
import pytest
from helpers.digits import write_digits_npz
from torch import nn

from edgeattn.checkpoint import load_checkpoint
from edgeattn.onnx.graph import DQ_OP
from edgeattn.onnx.qdq_graph import MOVEMENT_OPS
from edgeattn.quantize import quantize_checkpoint
from edgeattn.quantize.measured import group_layers, layer_kind, stage_of
from edgeattn.quantize.onnx_export import export_quantized_onnx
from edgeattn.quantize.placement import PLACEMENTS, Plan, build_plan
from edgeattn.quantize.ptq import model_graph
from edgeattn.quantize.timing import PLACEMENT_TIMERS, paired_ratio

KEY = "attn_vgg11_linear"
COMPUTE = ("Conv", "Gemm", "MatMul")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    """200 builtin:digits images as an .npz (calibration and evaluation splits stay small)."""
    return write_digits_npz(tmp_path_factory.mktemp("data") / "digits200.npz", 200)


@dataclass
class KernelCostTimer:
    """Real exported graphs, deterministic 'time': each conv costs `conv_int8` in INT8 (weight from a
    DequantizeLinear) and 1.0 in float, each Gemm/MatMul with a constant weight `linear_int8` vs 1.0."""

    conv_int8: float = 2.0
    linear_int8: float = 0.5
    name: str = "kernel-cost"

    def describe(self) -> str:
        return "kernel-cost model (test)"

    def time(self, models, seconds, min_rounds=5, max_rounds=40, on_round=None):
        return [[self.cost(m)] * min_rounds for m in models]

    def cost(self, model: onnx.ModelProto) -> float:
        producer = {o: n for n in model.graph.node for o in n.output}
        inits = {i.name for i in model.graph.initializer}
        total = 0.0
        for n in model.graph.node:
            if n.op_type not in COMPUTE or len(n.input) < 2:
                continue
            w = producer.get(n.input[1])
            int8 = w is not None and w.op_type == DQ_OP
            if not int8 and n.input[1] not in inits and n.op_type == "MatMul":
                continue  # activation x activation
            total += (self.conv_int8 if n.op_type == "Conv" else self.linear_int8) if int8 else 1.0
        return total


class AllSlowerTimer(KernelCostTimer):
    def __init__(self) -> None:
        super().__init__(conv_int8=2.0, linear_int8=3.0, name="all-slower")


for _name, _timer in (("kernel-cost", KernelCostTimer), ("all-slower", AllSlowerTimer)):
    if _name not in PLACEMENT_TIMERS:  # a timer factory takes the opened --device (None here)
        PLACEMENT_TIMERS.register(_name, lambda device, _timer=_timer: _timer())


def _weight_key(shape) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    return tuple(sorted(shape)) if len(shape) == 2 else shape  # a linear weight may be transposed


def graph_layers(model: onnx.ModelProto) -> Counter:
    """(weight shape, weight from DQ?, activation from DQ?) of every conv / linear node in the ONNX."""
    producer = {o: n for n in model.graph.node for o in n.output}
    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}

    def from_dq(tensor: str) -> bool:
        node = producer.get(tensor)
        while node is not None and node.op_type in MOVEMENT_OPS:
            node = producer.get(node.input[0])
        return node is not None and node.op_type == DQ_OP

    found: Counter = Counter()
    for n in model.graph.node:
        if n.op_type not in COMPUTE or len(n.input) < 2:
            continue
        w = producer.get(n.input[1])
        if w is not None and w.op_type == DQ_OP and w.input[0] in shapes:
            found[(_weight_key(shapes[w.input[0]]), True, from_dq(n.input[0]))] += 1
        elif n.input[1] in shapes:
            found[(_weight_key(shapes[n.input[1]]), False, from_dq(n.input[0]))] += 1
    return found


def expected_layers(report, module: nn.Module) -> Counter:
    modules = dict(module.named_modules())
    want: Counter = Counter()
    for row in report.layers:
        if row.reason == "not called in forward":
            continue
        int8 = row.precision == "int8"
        want[(_weight_key(modules[row.layer].weight.shape), int8, int8)] += 1
    return want


def check_onnx_matches_decisions(report, qckpt, tmp_path) -> onnx.ModelProto:
    handle = load_checkpoint(qckpt)
    path = tmp_path / "int8.onnx"
    export_quantized_onnx(handle, path)
    model = onnx.load(str(path))
    fp32 = load_checkpoint(report.checkpoint).module
    assert graph_layers(model) == expected_layers(report, fp32)
    # every group's layers carry the group's decision
    precision = {r.layer: r.precision for r in report.layers}
    for g in report.measured.groups:  # (the whole-model start row: later groups may flip its layers)
        if g.kept in ("int8", "float") and g.kind != "whole model":
            assert {precision[n] for n in g.layers} == {g.kept}, g.group
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal(handle.input_spec.shape(1)).astype(np.float32)
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert y.shape == (1, 10) and np.isfinite(y).all()
    return model


def test_kinds_stages_and_groups(trained):
    handle = load_checkpoint(trained(KEY))
    module = handle.module
    assert layer_kind("stages.2.1.transformer.0.attn.qkv", nn.Linear(4, 12)) == "attention linear"
    assert layer_kind("stages.3.blocks.1.mlp.fc1", nn.Conv2d(8, 32, 1)) == "mlp 1x1 conv"
    assert layer_kind("stages.1.0.conv2_kxk.conv", nn.Conv2d(8, 8, 3, groups=8)) == "depthwise conv"
    assert (
        layer_kind("head.fc", nn.Linear(8, 10)) == layer_kind("head_dist", nn.Linear(8, 10)) == "head linear"
    )
    assert layer_kind("stem.conv", nn.Conv2d(3, 8, 3)) == "conv"
    assert (
        stage_of("stages.2.1.transformer.0.attn.qkv") == "stages.2" and stage_of("features.3") == "features"
    )
    import torch

    policy = PLACEMENTS.get("onnxruntime")
    from dataclasses import replace

    everything = replace(policy, min_macs_per_output=0)
    example = torch.zeros(handle.input_spec.shape(1))
    plan: Plan = build_plan(module, model_graph(module, example), everything)
    groups = group_layers(module, plan)
    names = [n for g in groups for n in g.layer_names]
    assert sorted(names) == sorted(p.name for p in plan.int8_layers)  # each INT8 layer in one group
    coarse = group_layers(module, plan, max_groups=2)  # too many (kind, stage) pairs: by kind only
    assert len(coarse) < len(groups) and all(g.stage == "" for g in coarse)


def test_paired_ratio_interval():
    r = paired_ratio([2.0, 2.2, 1.9, 2.1, 2.0], [1.0, 1.0, 1.0, 1.0, 1.0])
    assert r.low <= r.median <= r.high and r.above_one
    flat = paired_ratio([1.0, 1.1, 0.9, 1.0, 1.05], [1.0, 1.0, 1.0, 1.0, 1.0])
    assert not flat.above_one  # interval includes 1.0: not shown faster


def test_measured_decisions_are_the_graph(trained, data, tmp_path):
    """Cost model: INT8 convs cost more, INT8 linears less -> conv groups float, linear groups INT8."""
    report = quantize_checkpoint(
        trained(KEY),
        data,
        tmp_path / "q.pt",
        calib_size=16,
        placement="measured",
        placement_timer="kernel-cost",
        placement_budget=120,  # the cost timer is instant: only the exports spend it (all groups reached even on a loaded machine)
    )
    m = report.measured
    assert m is not None and m.timer == "kernel-cost model (test)"
    kept = {g.group: g.kept for g in m.groups}
    timed = {g.group: g.kept for g in m.groups if g.int8_ms is not None and g.kind != "whole model"}
    assert all(v == ("float" if "conv" in k else "int8") for k, v in timed.items()), m.group_rows()
    assert "float" in kept.values() and "int8" in kept.values()
    # the whole-model start: every rule-float layer (convs) INT8 costs more here, so the rules stay
    start = m.groups[0]
    assert start.kind == "whole model" and start.kept == "float" and start.int8_ms > start.float_ms
    for g in m.groups:
        if g.int8_ms is None:  # not reached within the budget: kept as the search started
            assert "budget" in g.note
            continue
        assert g.float_ms is not None and len(g.interval) == 2
        assert (g.kept == "int8") == (g.float_ms >= g.int8_ms)
    floats = [r for r in report.layers if r.precision == "float" and r.reason.startswith("measured:")]
    assert floats and all("conv" in r.reason for r in floats)
    check_onnx_matches_decisions(report, tmp_path / "q.pt", tmp_path)
    # FP32 costs one per layer; the INT8 model is cheaper (its linears), so INT8 is recommended
    assert m.recommended == "int8" and m.speedup > 1 and "faster" in m.verdict


def test_int8_slower_everywhere_recommends_fp32(trained, data, tmp_path):
    report = quantize_checkpoint(
        trained(KEY),
        data,
        tmp_path / "q.pt",
        calib_size=16,
        placement="measured",
        placement_timer="all-slower",
        placement_budget=12,
    )
    m = report.measured
    int8_rows = [g for g in m.groups if g.kept == "int8"]
    assert int8_rows, m.group_rows()  # an INT8 model exists: the least slow group (or one never timed)
    assert all(g.int8_ms is None or "kept so an INT8 model exists" in g.note for g in int8_rows)
    assert m.groups[0].kind == "whole model" and m.groups[0].kept == "float"
    assert m.recommended == "fp32" and "recommended artifact for this CPU is FP32" in m.verdict
    assert m.interval[1] < 1.0
    check_onnx_matches_decisions(report, tmp_path / "q.pt", tmp_path)


def test_cli_measured_placement_with_the_onnxruntime_timer(trained, data, run_cli, tmp_path):
    """Real timing on onnxruntime here (decisions are this machine's): the report, the table, the
    verdict and the graph agree."""
    from edgeattn.quantize.result import QuantizeReport

    out, js = tmp_path / "q.pt", tmp_path / "q.json"
    code, stdout, stderr = run_cli(
        "quantize",
        trained(KEY),
        "--data",
        data,
        "--calib-size",
        "16",
        "--placement",
        "measured",
        "--placement-budget",
        "6",
        "--out",
        out,
        "--json",
        js,
    )
    assert code == 0, stderr
    assert "measured placement" in stdout and "ms int8" in stdout
    assert "recommended" in stdout or "deploy the INT8 artifact" in stdout
    report = QuantizeReport.model_validate(json.loads(js.read_text()))
    m = report.measured
    assert m.timer.startswith("onnxruntime") and m.recommended in ("int8", "fp32")
    assert m.rounds >= 10 and m.fp32_ms > 0 and m.int8_ms > 0
    for g in m.groups:  # timed, or (on a machine too loaded for the 6 s budget) decided by the policy
        assert g.rounds >= 5 if g.int8_ms is not None else "budget" in g.note
    check_onnx_matches_decisions(report, out, tmp_path)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (
            ("--placement", "measured", "--runtime", "tensorrt"),
            "--placement measured times the model on onnxruntime",
        ),
        (("--placement", "measured", "--placement-timer", "nowhere"), "unknown placement timer 'nowhere'"),
        (("--placement", "guess"), "guess"),
    ],
)
def test_bad_placement_input_is_one_line(trained, data, run_cli, tmp_path, args, problem):
    out = tmp_path / "q.pt"
    code, _, stderr = run_cli("quantize", trained(KEY), "--data", data, "--out", out, *args)
    assert code == 2 and problem in stderr and "Traceback" not in stderr
    assert not out.exists()


@pytest.mark.slow
def test_measured_placement_on_a_transformer_with_smoothquant(trained, data, tmp_path):
    """mobilevit: SmoothQuant puts its own ops inside the linears' input hooks; their quantizers go with
    the linear they feed, so the graph still matches the decisions."""
    tiny = trained("mobilevit_xxs")
    report = quantize_checkpoint(
        tiny, data, tmp_path / "q.pt", calib_size=16, placement="measured", placement_timer="kernel-cost",
        placement_budget=600,
    )  # fmt: skip
    kept = {g.group: g.kept for g in report.measured.groups}
    assert all(v == ("float" if "conv" in k else "int8") for k, v in kept.items()), kept
    check_onnx_matches_decisions(report, tmp_path / "q.pt", tmp_path)


def test_placement_size_times_at_the_deployment_resolution(trained, data, tmp_path):
    """`placement_size`: the groups and the final verdict are timed on graphs at that input size, and the
    INT8 model saved stays the checkpoint's own size."""
    report = quantize_checkpoint(
        trained(KEY),
        data,
        tmp_path / "q.pt",
        calib_size=16,
        placement="measured",
        placement_timer="kernel-cost",
        placement_budget=12,
        placement_size=64,
    )
    assert report.measured.input_shape == [1, 3, 64, 64]
    assert load_checkpoint(tmp_path / "q.pt").input_spec.size[0] == 32
    check_onnx_matches_decisions(report, tmp_path / "q.pt", tmp_path)


def test_timing_size_rebuilds_models_with_resized_attention_biases(trained):
    """EfficientFormer's per-position attention biases are resized for the timing size; the model runs."""
    import torch

    from edgeattn.quantize.timing_size import TimingSize

    handle = load_checkpoint(trained("efficientformer_l1"))
    timing = TimingSize.of(handle, 96)
    assert timing.shape == (1, 3, 96, 96)
    resized = timing.fp32(handle.module)
    with torch.no_grad():
        assert resized(torch.zeros(timing.shape)).shape == (1, 10)
    native = TimingSize.of(handle, handle.input_spec.size[0])
    assert native.size is None and native.fp32(handle.module) is handle.module


def test_timed_graphs_have_the_exported_dynamic_batch(trained):
    """The placement times graphs shaped like the exported artifact (dynamic batch): with a static batch
    of 1 onnxruntime fuses MatMul+Add into Gemm before its QDQ fusion and int8 linears run as float."""
    from edgeattn.quantize.verdict import fp32_onnx

    handle = load_checkpoint(trained(KEY))
    model = fp32_onnx(handle.module, tuple(handle.input_spec.shape(1)))
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value
