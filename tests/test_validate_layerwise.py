"""`--layerwise`: per-layer SQNR of an INT8 QDQ ONNX against its FP32 twin, and keeping layers in FP32."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx.numpy_helper as nh
import pytest
from helpers.artifacts import calibration_inputs, fp32_onnx, int8_onnx
from helpers.models import trained_checkpoint

from edgeattn.errors import InputError
from edgeattn.onnx.float_twin import float_twin, keep_fp32
from edgeattn.onnx.ort import run_outputs
from edgeattn.onnx.qdq_graph import QdqGraph
from edgeattn.onnx.weights import reference_weights
from edgeattn.validate.layerwise import layerwise_drift, output_sqnr_db
from edgeattn.validate.metrics import mean_kl

VGG = "attn_vgg11_linear"


@pytest.fixture(scope="module")
def vgg():
    fp32, int8 = fp32_onnx(VGG), int8_onnx(VGG)
    return {
        "fp32": fp32,
        "int8": onnx.load(str(int8)),
        "weights": reference_weights(fp32),
        "probe": calibration_inputs(fp32, 16, "val"),  # what the layerwise report looks at
        "held_out": calibration_inputs(fp32, 96, "train"),  # what the drift is judged on
    }


def test_float_twin_is_the_fp32_model_and_keep_all_is_the_twin(vgg):
    x = vgg["probe"]
    reference = run_outputs(vgg["fp32"], x)
    twin, restored, total = float_twin(vgg["int8"], vgg["weights"])
    assert (
        restored >= total - 3
    )  # every conv/linear weight found its FP32 original (only scalar constants may not)
    assert (output_sqnr_db(reference, run_outputs(twin, x)) or 200.0) > 80  # the twin IS the FP32 model
    assert output_sqnr_db(reference, run_outputs(vgg["int8"], x)) < 60  # while the INT8 model is not
    everything = [n.name for n in QdqGraph(vgg["int8"]).quantized_nodes()]
    kept = keep_fp32(vgg["int8"], everything, weights=vgg["weights"])
    assert (output_sqnr_db(run_outputs(twin, x), run_outputs(kept, x)) or 200.0) > 80
    assert not any(
        n.op_type == "QuantizeLinear" and n.input[0] == "input" for n in kept.graph.node if n.output
    )


def test_layerwise_report_sorted_worst_first_with_modules(vgg):
    report = layerwise_drift(vgg["int8"], vgg["probe"], weights=vgg["weights"], verify_top=2)
    sqnr = [layer.sqnr_db for layer in report.layers if layer.sqnr_db is not None]
    # the two verified layers come first (ordered by measured output gain), the rest by local SQNR
    assert len(report.layers) >= 20 and sqnr[2:] == sorted(sqnr[2:])
    assert sorted(sqnr[:2]) == sorted(sqnr)[:2]
    assert {layer.op_type for layer in report.layers} >= {"Conv", "MatMul"}
    assert all(layer.module for layer in report.layers if layer.op_type == "Conv")
    assert 10 < report.output_sqnr_db < 80 and report.samples == 16
    assert all(layer.kept_fp32_output_sqnr_db is not None for layer in report.layers[:2])
    assert json.loads(json.dumps(report.to_dict()))["layers"][0]["node"] == report.worst(1)[0]


def test_the_worst_ranked_quarter_of_the_real_int8_model_carries_far_more_error_than_the_best(vgg):
    """No tampering, a plain quantize_static model, ranked the way the report ranks when asked to
    verify (`verify_top`: each node's measured effect on the model output when kept in FP32).
    The local ranking alone (per-node SQNR) is not a robust claim on this model. Its error is spread
    over ~80 quantized nodes, and a tensor quantized once feeds several of them, so keeping one node in
    FP32 moves the held-out SQNR by a fraction of a dB; the one node with a large effect, the classifier
    Gemm after the global pooling, has an ordinary local SQNR. Leaving only the quarter ranked worst
    locally quantized against only the quarter ranked best gave +6.7 to +21.8 dB on four checkpoints,
    and +0.1 dB (44.0 vs 44.0 dB) on the fifth, retrained after the attention moved to (d, N) tiles:
    its Gemm alone is 25.1 dB of the whole model's 24.7 dB, and the worst local ranks went to the Elu
    and Div of the linear attention, whose quantization error the attention's own normalisation
    divides out (the Elus alone: 71 dB). Verified, the same model gives 25.0 vs 45.8 dB (+20.9 dB) in
    11 s. The planted-outlier test below is the sharp single-layer check of the local ranking."""
    probe = calibration_inputs(vgg["fp32"], 64, "val")
    everything = len(QdqGraph(vgg["int8"]).quantized_nodes())
    report = layerwise_drift(vgg["int8"], probe, weights=vgg["weights"], verify_top=everything)
    names = report.worst(len(report.layers))
    quarter = len(names) // 4
    x = vgg["held_out"]
    reference = run_outputs(vgg["fp32"], x)

    def sqnr_with_only(quantized: list[str]) -> float:
        """Held-out output SQNR when only the `quantized` nodes stay quantized (all others in FP32)."""
        rest = [name for name in names if name not in set(quantized)]
        return output_sqnr_db(reference, run_outputs(keep_fp32(vgg["int8"], rest, weights=vgg["weights"]), x))

    assert sqnr_with_only(names[-quarter:]) > sqnr_with_only(names[:quarter]) + 3


def _inflate_one_activation(model: onnx.ModelProto, factor: float = 16.0) -> tuple[onnx.ModelProto, str]:
    """Coarsen one activation quantizer 16x, as an outlier in the calibration data would (the range
    grows, so the step grows): that of the last Conv/Gemm/MatMul whose input only it reads. Returns
    the model and that node's name."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = QdqGraph(model)
    for conv in reversed(graph.quantized_nodes()):
        act = conv.input[0]
        if (
            conv.op_type in ("Conv", "Gemm", "MatMul")
            and act in graph.dq
            and graph.dq[act][0] == "act"
            and len(graph.consumers[act]) == 1
        ):
            break
    dq = graph.dq_nodes[act]
    q = graph.dq[act][2]
    for name in {q.input[1], dq.input[1]}:
        init = graph.initializers[name]
        init.CopyFrom(nh.from_array(nh.to_array(init) * np.float32(factor), name))
    return model, conv.name


def test_keeping_the_worst_layer_in_fp32_reduces_the_drift(vgg):
    """The layer layerwise names first is the one with the coarse quantizer, and keeping it in FP32
    takes most of the drift away — on inputs the ranking never saw."""
    model, culprit = _inflate_one_activation(vgg["int8"])
    report = layerwise_drift(model, vgg["probe"], weights=vgg["weights"], verify_top=3)
    assert report.worst(1) == [culprit]
    gains = [layer.kept_fp32_output_gain_db for layer in report.layers[:3]]
    assert gains[0] > max(gains[1:]) + 3  # keeping it buys far more than keeping any other candidate
    x = vgg["held_out"]
    reference = run_outputs(vgg["fp32"], x)
    before = run_outputs(model, x)
    after = run_outputs(keep_fp32(model, report.worst(1), weights=vgg["weights"]), x)
    assert output_sqnr_db(reference, after) > output_sqnr_db(reference, before) + 3
    assert mean_kl(reference, after) < 0.5 * mean_kl(reference, before)
    # ... and keeping the best-ranked layer instead does not.
    other = run_outputs(keep_fp32(model, [report.layers[-1].node], weights=vgg["weights"]), x)
    assert mean_kl(reference, other) > 0.8 * mean_kl(reference, before)


def test_keep_fp32_unknown_node_and_non_qdq_models_are_input_errors(vgg, tmp_path):
    with pytest.raises(InputError, match="no quantized node named 'nope'"):
        keep_fp32(vgg["int8"], ["nope"])
    with pytest.raises(InputError, match="QuantizeLinear/DequantizeLinear"):
        layerwise_drift(vgg["fp32"], vgg["probe"])
    out = tmp_path / "kept.onnx"
    keep_fp32(vgg["int8"], [QdqGraph(vgg["int8"]).quantized_nodes()[0].name], out=out)
    onnx.checker.check_model(onnx.load(str(out)))


def test_validate_layerwise_cli_lists_layers(tmp_path, run_cli):
    ckpt, int8 = trained_checkpoint(VGG), int8_onnx(VGG)
    code, out, err = run_cli(
        "validate", int8, "--reference", ckpt, "--layerwise", "--layerwise-samples", "8", "--limit", "200",
        "--json", tmp_path / "r.json", "--markdown", tmp_path / "r.md",
    )  # fmt: skip
    report = json.loads((tmp_path / "r.json").read_text())
    assert code == (0 if report["passed"] else 1), out + err  # the exit code is the gates' verdict
    assert "SQNR dB" in out
    layers = report["layerwise"]["layers"]
    assert len(layers) >= 20 and layers[0]["sqnr_db"] <= layers[-1]["sqnr_db"]
    assert "Where the drift comes from" in (tmp_path / "r.md").read_text()
