"""The TensorRT readiness check (`edgeattn check tensorrt`, run by every `export --target tensorrt`): each
rule on a small hand-built Q/DQ graph that passes until one thing TensorRT's parser rejects is changed."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeattn.export.tensorrt_lint import LINT_RULES, Profile, lint_onnx
from edgeattn.export.tensorrt_versions import tensorrt_target


def qdq_model(
    *,
    act_zp: np.ndarray | None = None,
    act_scale: float | np.ndarray = 0.05,
    weight_axis: int = 1,
    weight_scale: np.ndarray | None = None,
    batch: int | str = 1,
    extra_op: str | None = None,
    opset: int = 17,
    q_feeds_matmul: bool = False,
) -> onnx.ModelProto:
    """input [N, 4] -> Q/DQ (int8, zp 0) -> MatMul with an int8 per-channel weight [4, 3] -> logits."""
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, size=(4, 3)).astype(np.int8)
    inits = [
        numpy_helper.from_array(np.asarray(act_scale, dtype=np.float32), "s_in"),
        numpy_helper.from_array(np.zeros((), np.int8) if act_zp is None else act_zp, "zp_in"),
        numpy_helper.from_array(w, "w_q"),
        numpy_helper.from_array(
            np.full(3 if weight_axis == 1 else 4, 0.01, np.float32) if weight_scale is None else weight_scale,
            "w_s",
        ),
        numpy_helper.from_array(np.zeros(3 if weight_axis == 1 else 4, np.int8), "w_zp"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "s_in", "zp_in"], ["x_q"], name="q_in"),
        helper.make_node("DequantizeLinear", ["x_q", "s_in", "zp_in"], ["x_dq"], name="dq_in"),
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_zp"], ["w"], name="dq_w", axis=weight_axis),
        helper.make_node("MatMul", ["x_q" if q_feeds_matmul else "x_dq", "w"], ["mm"], name="matmul"),
    ]
    if extra_op:
        nodes.append(helper.make_node(extra_op, ["mm"], ["logits"], name="extra"))
    else:
        nodes.append(helper.make_node("Identity", ["mm"], ["logits"], name="out"))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 3])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def findings(model, version="10", profile=None) -> list[tuple[str, str]]:
    report = lint_onnx(model, tensorrt_target(version), profile)
    return [(f.rule, f.node) for f in report.findings]


def test_a_valid_qdq_graph_passes_for_every_version_and_runs():
    model = qdq_model()
    onnx.checker.check_model(model, full_check=True)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"input": np.ones((1, 4), np.float32)})[0].shape == (1, 3)
    for version in ("8.6", "10", "10.16", "11"):
        assert findings(model, version) == [], version
    assert set(LINT_RULES.names()) >= {
        "opset",
        "operators",
        "qdq-types",
        "zero-points",
        "scales",
        "weight-axis",
    }


def test_uint8_activations_are_refused():
    bad = qdq_model(act_zp=np.zeros((), np.uint8))
    assert ("qdq-types", "q_in") in findings(bad, "8.6") and ("qdq-types", "dq_in") in findings(bad, "11")


def test_non_zero_zero_points_are_refused():
    assert ("zero-points", "q_in") in findings(qdq_model(act_zp=np.array(3, np.int8)))


@pytest.mark.parametrize("scale", [0.0, -0.1, np.inf])
def test_zero_negative_or_infinite_scales_are_refused(scale):
    assert ("scales", "q_in") in findings(qdq_model(act_scale=scale))
    bad_weights = qdq_model(weight_scale=np.array([0.01, 0.0, 0.01], np.float32))
    assert findings(bad_weights) == [("scales", "dq_w")]


def test_per_channel_activations_and_wrong_weight_axes_are_refused():
    assert ("scales", "q_in") in findings(qdq_model(act_scale=np.full(4, 0.05, np.float32)))
    # MatMul weights [K, N] need their scales on N (axis 1); axis 0 is the input-channel axis.
    assert findings(qdq_model(weight_axis=0)) == [("weight-axis", "dq_w")]


def test_an_op_the_version_lacks_is_named():
    model = qdq_model(extra_op="Hardmax")
    assert findings(model, "8.6") == [("operators", "extra")]
    assert findings(model, "10") == []  # 10.0's parser has Hardmax


def test_opsets_outside_the_versions_range_are_refused():
    assert findings(qdq_model(opset=17), "8.6") == []
    assert findings(qdq_model(opset=19), "8.6") == [("opset", "")]
    assert findings(qdq_model(opset=19), "10") == []


def test_a_quantized_tensor_must_be_dequantized():
    assert ("qdq-pairs", "q_in") in findings(qdq_model(q_feeds_matmul=True))


def test_dynamic_dims_must_match_the_profile():
    dynamic = qdq_model(batch="batch")
    assert findings(dynamic) == [("shapes", "input")]  # no profile for a dynamic batch
    assert findings(dynamic, profile=Profile(1, 8, 32)) == []
    static = qdq_model(batch=4)
    assert findings(static, profile=Profile(4, 4, 4)) == []
    assert findings(static, profile=Profile(1, 8, 32)) == [("shapes", "input")]
    assert findings(static, profile=Profile(2, 2, 2)) == [("shapes", "input")]


# ------------------------------------------------------------------------------------------------ CLI
def test_check_cli_passes_a_ready_model(tmp_path, run_cli):
    path = tmp_path / "ok.onnx"
    onnx.save(qdq_model(batch="batch"), str(path))
    report = tmp_path / "report.json"
    code, out, err = run_cli(
        "check", "tensorrt", path, "--tensorrt-version", "8.6", "--dynamic-batch", "1:4:8", "--json", report
    )
    assert code == 0, out + err
    assert "ready" in out and "TensorRT 8.6" in out
    data = json.loads(report.read_text())
    assert data["passed"] is True and data["tensorrt"]["version"] == "8.6" and data["findings"] == []


def test_check_cli_fails_naming_the_nodes(tmp_path, run_cli):
    path = tmp_path / "bad.onnx"
    onnx.save(qdq_model(act_zp=np.zeros((), np.uint8), extra_op="Hardmax"), str(path))
    code, out, err = run_cli("check", "tensorrt", path, "--tensorrt-version", "8.6")
    assert code == 1, out + err
    assert "[operators] extra: Hardmax" in out and "[qdq-types] q_in: QuantizeLinear uses uint8" in out
    assert "not ready for TensorRT 8.6" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run_cli("check", "tensorrt", path, "--tensorrt-version", "10.3")
    assert code == 1 and "Hardmax" not in out and "uint8" in out


def test_check_cli_bad_input_exits_2(tmp_path, run_cli):
    good = tmp_path / "ok.onnx"
    onnx.save(qdq_model(), str(good))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    for args, text in (
        ((tmp_path / "missing.onnx",), "does not exist"),
        ((junk,), "cannot read ONNX model"),
        ((good, "--tensorrt-version", "9.3"), "TensorRT 9.3 is not supported"),
        ((good, "--batch", "2", "--dynamic-batch", "1:2:4"), "both given"),
        ((good, "--dynamic-batch", "8:1:4"), "not an ordered range"),
    ):
        code, _, err = run_cli("check", "tensorrt", *args)
        assert code == 2 and text in err, (args, err)
        assert len(err.strip().splitlines()) == 1
