"""INT8 for TensorRT without TensorRT: `quantize --runtime tensorrt` gives signed, symmetric, per-tensor int8
activations and output-channel weight scales, and its Q/DQ ONNX passes the readiness check of 8.6, 10.x
and 11.x for every zoo family (the onnxruntime placement's ONNX fails it: tests/test_export_int8.py)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgeattn.export.tensorrt_lint import lint_onnx
from edgeattn.export.tensorrt_versions import tensorrt_target
from edgeattn.manifest import read_manifest
from edgeattn.onnx.graph import DQ_OP, Q_OP, GraphView, attr

VERSIONS = ("8.6", "10.3", "11")
# One tiny model per zoo family; the transformer families take minutes to quantize on 2 cores.
FAMILIES = {
    "attn_vgg11_linear": [],
    "mobilevit_xxs": [pytest.mark.slow],
    "efficientformer_l1": [pytest.mark.slow],
}


def qdq_facts(model: onnx.ModelProto) -> dict[str, object]:
    """What TensorRT's parser needs of every Q/DQ node, read straight off the graph."""
    view = GraphView(model)
    consts = {n: view.array(n) for n in view.inits}
    zero_points, scales, act_scale_sizes, weight_axes = [], [], [], []
    for node in model.graph.node:
        if node.op_type not in (Q_OP, DQ_OP):
            continue
        zero_points.append(consts[node.input[2]])
        scales.append(consts[node.input[1]])
        if node.op_type == Q_OP:
            act_scale_sizes.append(consts[node.input[1]].size)
        elif node.input[0] in consts and consts[node.input[1]].size > 1:
            for user in view.consumers[node.output[0]]:
                want = {"Conv": 0, "Gemm": 0 if attr(user, "transB", 0) else 1, "MatMul": 1}.get(user.op_type)
                weight_axes.append((int(attr(node, "axis", 1)), want))
    return {
        "zero_point_dtypes": {str(z.dtype) for z in zero_points},
        "all_zero": all(np.all(z == 0) for z in zero_points),
        "scales_positive": all(np.all(s > 0) and np.all(np.isfinite(s)) for s in scales),
        "activation_scale_sizes": set(act_scale_sizes),
        "weight_axes": weight_axes,
        "qdq_nodes": len(zero_points),
    }


@pytest.mark.parametrize("key", [pytest.param(k, marks=m) for k, m in FAMILIES.items()])
def test_tensorrt_placement_int8_onnx_is_ready_for_every_version(tmp_path, trained, run_cli, key):
    q = tmp_path / "q.pt"
    code, out, err = run_cli(
        "quantize",
        trained(key),
        "--data",
        "builtin:digits",
        "--calib-size",
        "16",
        "--runtime",
        "tensorrt",
        "--out",
        q,
    )
    assert code == 0, out + err
    # The export writes the TensorRT-ready ONNX (linted for the target), then stops here without TensorRT.
    engine = tmp_path / "q.engine"
    code, _, err = run_cli(
        "export",
        q,
        "--target",
        "tensorrt",
        "--precision",
        "int8",
        "--tensorrt-version",
        "8.6",
        "--out",
        engine,
    )
    assert code in (0, 2), err
    onnx_path = tmp_path / "q.onnx"
    assert read_manifest(onnx_path).details["tensorrt_readiness"]["passed"] is True
    model = onnx.load(str(onnx_path))
    facts = qdq_facts(model)
    assert facts["qdq_nodes"] > 0
    assert facts["zero_point_dtypes"] == {"int8"} and facts["all_zero"] and facts["scales_positive"]
    assert facts["activation_scale_sizes"] == {1}  # per-tensor activations
    assert facts["weight_axes"] and all(axis == want for axis, want in facts["weight_axes"])
    assert model.opset_import[0].version >= 13
    for version in VERSIONS:
        report = lint_onnx(model, tensorrt_target(version))
        assert report.passed, (version, [f.message for f in report.findings][:5])


def test_mixed_preset_is_refused_for_tensorrt_before_any_work(tmp_path, trained, run_cli):
    """--preset mixed makes asymmetric activations (non-zero zero points), which TensorRT's parser rejects."""
    out = tmp_path / "mixed.pt"
    code, _, err = run_cli(
        "quantize", trained("attn_vgg11_linear"), "--data", "builtin:digits", "--preset", "mixed",
        "--runtime", "tensorrt", "--out", out,
    )  # fmt: skip
    assert code == 2 and "--preset mixed cannot be used with --runtime tensorrt" in err and "symmetric" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_signed_activation_quantizers_keep_their_scale():
    """`force_signed` flips an unsigned NNCF quantizer to signed with the same scale: [0, s] becomes [-s, s]."""
    import torch

    from edgeattn.quantize.ptq import make_activation_quantizer

    q = make_activation_quantizer(0.0, 2.0, "performance")
    assert not q.signed
    x = torch.linspace(-1.0, 2.0, 7)
    assert float(q(x).detach().min()) == 0.0  # unsigned clips the negative half
    q.signed = True
    y = q(x).detach()
    assert float(y.min()) < -0.9 and abs(float(y.max()) - 2.0) < 0.05
    assert float(q.scale.detach().reshape(-1)[0]) == pytest.approx(2.0)
