"""INT8 exports from a quantized checkpoint (`edgeattn quantize`): standard Q/DQ ONNX that loads in
onnxruntime and runs on OpenVINO (a second, independent runtime) with the same top-1 within 0.5 point;
the TensorRT-ready Q/DQ ONNX; Core ML with INT8 weights (and activations, slow)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers.models import TINY
from onnx import numpy_helper

from edgeattn.checkpoint import load_checkpoint
from edgeattn.data import load_split
from edgeattn.errors import GateFailure, InputError
from edgeattn.export import export_artifact
from edgeattn.manifest import read_manifest
from edgeattn.onnx.checks import check_qdq_graph
from edgeattn.onnx.graph import nonstandard_ops
from edgeattn.quantize import quantize_checkpoint
from edgeattn.runtime import open_runner

ov = pytest.importorskip("openvino")


def quantized_checkpoint(folder, trained, key: str):
    q = folder / f"{key}-int8.pt"
    quantize_checkpoint(trained(key), "builtin:digits", q, calib_size=64)
    return q


def openvino_logits(path, x: np.ndarray) -> np.ndarray:
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_NUM_THREADS": 2})
    return np.asarray(compiled(x)[compiled.output(0)], dtype=np.float32)


def top1(logits: np.ndarray, labels: np.ndarray) -> float:
    return 100.0 * float(np.mean(logits.argmax(1) == labels))


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, trained):
    return quantized_checkpoint(tmp_path_factory.mktemp("q"), trained, "attn_vgg11_linear")


@pytest.fixture(scope="module")
def int8_onnx(tmp_path_factory, quantized):
    out = tmp_path_factory.mktemp("int8") / "lin-int8.onnx"
    manifest = export_artifact(quantized, "onnx", out, dynamic_batch=(1, 32, 64))  # default precision: int8
    return out, manifest


def test_int8_onnx_is_standard_qdq_and_matches_on_openvino(quantized, int8_onnx):
    out, manifest = int8_onnx
    assert manifest.precision == "int8" and manifest.source_kind == "int8"
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert nonstandard_ops(model) == []
    qdq = check_qdq_graph(model, out.name)
    assert qdq["quantize_linear"] > 0 and qdq["per_channel_dq"] > 0
    assert read_manifest(out).details["qdq"] == qdq
    handle = load_checkpoint(quantized)
    val = load_split("builtin:digits", "val", handle.config.input_size)
    labels = val.labels.numpy()
    ort_top1 = top1(open_runner(out).predict(val.images), labels)
    ov_top1 = top1(openvino_logits(out, val.to_model_input(handle.input_spec).numpy()), labels)
    assert ort_top1 > 30.0  # a trained model: the comparison means something
    assert abs(ort_top1 - ov_top1) <= 0.5, (ort_top1, ov_top1)


def test_qdq_rules_reject_custom_domains_and_old_opsets(int8_onnx):
    out, _ = int8_onnx
    bad = onnx.load(str(out))
    bad.graph.node[0].domain = "org.openvinotoolkit"
    with pytest.raises(GateFailure, match="non-standard ops"):
        check_qdq_graph(bad, "bad.onnx")
    old = onnx.load(str(out))
    old.opset_import[0].version = 12
    with pytest.raises(GateFailure, match="too old"):
        check_qdq_graph(old, "old.onnx")


def test_int8_opset_too_old_is_refused_before_work(tmp_path, quantized):
    with pytest.raises(InputError, match="too old for INT8 Q/DQ"):
        export_artifact(quantized, "onnx", tmp_path / "q.onnx", opset=12)
    with pytest.raises(InputError, match="exports only as --precision int8"):
        export_artifact(quantized, "onnx", tmp_path / "q.onnx", precision="fp32")
    assert list(tmp_path.iterdir()) == []


def test_int8_for_tensorrt_refuses_a_checkpoint_placed_for_onnxruntime(tmp_path, quantized, run_cli):
    """The onnxruntime placement has unsigned (uint8) activations, which TensorRT rejects or clips:
    refused before any work, naming the fix (the tensorrt placement: tests/test_tensorrt_int8.py)."""
    code, _, stderr = run_cli(
        "export", quantized, "--target", "tensorrt", "--precision", "int8", "--out", tmp_path / "q.plan"
    )
    assert code == 2 and "quantized for onnxruntime" in stderr and "--runtime tensorrt" in stderr
    assert list(tmp_path.iterdir()) == []


def test_onnxruntime_placement_int8_onnx_fails_the_tensorrt_check(tmp_path, quantized, run_cli):
    """Negative control of the readiness check: NNCF's own signedness makes activations after ReLU
    unsigned (uint8), which TensorRT 8.6/10.0-10.1 reject and 10.2+ read as int8, clipping them."""
    from edgeattn.checkpoint import load_checkpoint
    from edgeattn.quantize.onnx_export import export_quantized_onnx

    onnx_path = tmp_path / "q-ort.onnx"
    export_quantized_onnx(load_checkpoint(quantized), onnx_path, runtime="tensorrt")
    zero_points = [
        numpy_helper.to_array(t)
        for t in onnx.load(str(onnx_path)).graph.initializer
        if t.data_type == onnx.TensorProto.UINT8
    ]
    assert zero_points  # the placement really produced uint8 Q/DQ
    code, out, err = run_cli("check", "tensorrt", onnx_path, "--tensorrt-version", "10.3")
    assert code == 1 and "[qdq-types]" in out and "uint8" in out, out + err


def test_coreml_int8_weights_from_quantized_checkpoint(tmp_path, quantized):
    pytest.importorskip("coremltools")
    out = tmp_path / "q.mlpackage"
    manifest = export_artifact(quantized, "coreml", out, precision="int8-weights", input="tensor")
    assert manifest.source_kind == "int8" and manifest.details["program"]["int8_weight_ops"] >= 5
    handle = load_checkpoint(quantized)
    val = load_split("builtin:digits", "val", handle.config.input_size).subset(32)
    coreml = open_runner(out).predict(val.images)  # Core ML on macOS, the reference executor elsewhere
    reference = open_runner(quantized).predict(val.images)  # the quantized torch model
    assert np.mean(coreml.argmax(1) == reference.argmax(1)) >= 0.9


@pytest.mark.slow
def test_coreml_int8_weights_and_activations_from_quantized_checkpoint(tmp_path, quantized):
    pytest.importorskip("coremltools")
    out = tmp_path / "w8a8.mlpackage"
    manifest = export_artifact(
        quantized, "coreml", out, data="builtin:digits", deployment_target="iOS17", calib_size=32
    )
    assert manifest.precision == "int8"
    program = manifest.details["program"]
    assert program["activation_quantize_ops"] >= 10 and program["int8_weight_ops"] >= 5
    handle = load_checkpoint(quantized)
    val = load_split("builtin:digits", "val", handle.config.input_size).subset(128)
    labels = val.labels.numpy()
    coreml_top1 = top1(open_runner(out).predict(val.images), labels)
    torch_top1 = top1(open_runner(quantized).predict(val.images), labels)
    assert abs(coreml_top1 - torch_top1) <= 5.0


@pytest.mark.slow
@pytest.mark.parametrize("key", list(TINY))
def test_every_family_int8_onnx_on_openvino(tmp_path, trained, key):
    q = quantized_checkpoint(tmp_path, trained, key)
    out = tmp_path / "m.onnx"
    export_artifact(q, "onnx", out, precision="int8", dynamic_batch=(1, 32, 64))
    assert nonstandard_ops(onnx.load(str(out))) == []
    handle = load_checkpoint(q)
    val = load_split("builtin:digits", "val", handle.config.input_size)
    labels = val.labels.numpy()
    ort_top1 = top1(open_runner(out).predict(val.images), labels)
    ov_top1 = top1(openvino_logits(out, val.to_model_input(handle.input_spec).numpy()), labels)
    assert abs(ort_top1 - ov_top1) <= 0.5, (key, ort_top1, ov_top1)
