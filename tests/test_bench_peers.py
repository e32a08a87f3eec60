"""The best-configured peer tools on a tiny real model: onnxruntime quantize_static with its documented
CPU settings, and NNCF's own ONNX PTQ. Each builds a working INT8 ONNX whose graph shows the options."""

from __future__ import annotations

import onnx
import pytest
import torch

from edgeattn.bench.peers import ORT_CPU_SETTINGS, nncf_quantize_onnx, ort_quantize_static_documented


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    from edgeattn.bench.artifacts import export_onnx
    from edgeattn.checkpoint import ModelHandle, save_checkpoint
    from edgeattn.models import ModelConfig

    d = tmp_path_factory.mktemp("peers")
    torch.manual_seed(0)
    ckpt = save_checkpoint(
        ModelHandle.new(ModelConfig("attn_vgg11", 10, 32, options={"width": 0.25})), d / "m.pt"
    )
    images = torch.randint(
        0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    return export_onnx(ckpt, d / "fp32.onnx", max_batch=4), images


def _q_types(path) -> dict[str, set[int]]:
    """Zero-point element types of QuantizeLinear (activations) and of DequantizeLinear nodes whose input
    is an initializer (weights, stored quantized)."""
    g = onnx.load(str(path)).graph
    inits = {i.name: i.data_type for i in g.initializer}
    out: dict[str, set[int]] = {"activations": set(), "weights": set()}
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2 and n.input[2] in inits:
            weight = n.op_type == "DequantizeLinear" and n.input[0] in inits
            out["weights" if weight else "activations"].add(inits[n.input[2]])
    return out


def _outputs_close(fp32, int8, images) -> float:
    from edgeattn.runtime import open_runner

    a, b = open_runner(fp32, threads=1), open_runner(int8, threads=1)
    x = a.prepare(images[:2])
    return float(abs(a.run(x) - b.run(x)).max() / (abs(a.run(x)).max() + 1e-6))


def test_documented_settings_per_cpu_kind():
    """What onnxruntime's quantize_static docstring advises: u8 activations / s8 weights on x86, 7-bit
    weights only without VNNI, s8/s8 on ARM."""
    assert (ORT_CPU_SETTINGS["vnni"].activation_type, ORT_CPU_SETTINGS["vnni"].reduce_range) == (
        "QUInt8",
        False,
    )
    assert ORT_CPU_SETTINGS["avx2"].reduce_range is True
    assert ORT_CPU_SETTINGS["arm-dotprod"].activation_type == "QInt8"
    assert all(s.quant_format == "QDQ" and s.per_channel and s.pre_process for s in ORT_CPU_SETTINGS.values())
    assert "reduce_range=False" in ORT_CPU_SETTINGS["vnni"].describe()


@pytest.mark.parametrize("kind", ["vnni", "avx2"])
def test_ort_quantize_static_documented_builds_uint8_activation_qdq(tiny_onnx, tmp_path, kind):
    from edgeattn.manifest import read_manifest

    fp32, images = tiny_onnx
    out = ort_quantize_static_documented(fp32, tmp_path / "q.onnx", images, cpu_kind=kind)
    types = _q_types(out)
    assert types["activations"] == {onnx.TensorProto.UINT8}  # u8 activations
    assert onnx.TensorProto.INT8 in types["weights"]  # s8 weights (biases are int32)
    g = onnx.load(str(out)).graph
    per_channel = [
        i for i in g.initializer if i.name.endswith("_scale") and len(i.dims) == 1 and i.dims[0] > 1
    ]
    assert per_channel  # per-channel weight scales
    m = read_manifest(out)
    assert m.precision == "int8" and m.history[-1]["cpu_kind"] == kind
    assert m.history[-1]["options"]["reduce_range"] is (kind == "avx2")
    assert "onnxruntime.ai/docs" in m.details["docs"]
    assert _outputs_close(fp32, out, images) < 0.5  # a working model, not garbage


@pytest.mark.parametrize("transformer", [False, True])
def test_nncf_quantize_onnx_builds_a_working_int8_model(tiny_onnx, tmp_path, transformer):
    from edgeattn.manifest import read_manifest

    fp32, images = tiny_onnx
    out = nncf_quantize_onnx(fp32, tmp_path / "n.onnx", images, transformer=transformer)
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    m = read_manifest(out)
    assert m.precision == "int8"
    assert m.history[-1]["options"]["model_type"] == ("transformer" if transformer else None)
    assert m.history[-1]["options"]["subset_size"] == len(images)
    assert _outputs_close(fp32, out, images) < 0.5
