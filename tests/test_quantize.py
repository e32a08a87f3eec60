"""INT8 quantization: NNCF PTQ + QAT through the CLI, the safe int8 checkpoint, eval in torch, the
standard Q/DQ ONNX on onnxruntime (fused int8 kernels, same top-1 as torch), and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers.digits import write_digits_npz
from helpers.models import REPO, tiny_config

from edgeattn.checkpoint import ModelHandle, load_checkpoint
from edgeattn.data import load_split

KEY = "attn_vgg11_linear"


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """400 builtin:digits training images as an .npz (split 60/15/25 by edgeattn): keeps QAT short."""
    return write_digits_npz(tmp_path_factory.mktemp("data") / "digits400.npz", 400)


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, trained, small_data):
    """One CLI run on a trained tiny model: PTQ on 48 calibration images, then one QAT epoch."""
    from edgeattn.cli.app import main

    ckpt = trained(KEY)
    d = tmp_path_factory.mktemp("q")
    out, js = d / "int8.pt", d / "summary.json"
    try:
        main(
            [
                "quantize",
                str(ckpt),
                "--data",
                small_data,
                "--calib-size",
                "48",
                "--qat",
                "--epochs",
                "1",
                "--batch-size",
                "32",
                "--out",
                str(out),
                "--json",
                str(js),
            ]
        )
    except SystemExit as exc:
        assert exc.code in (0, None), f"quantize exited {exc.code}"
    return ckpt, out, json.loads(js.read_text()), small_data


def test_summary_reports_layers_sizes_and_top1(quantized):
    _, out, summary, _ = quantized
    top1 = summary["top1"]
    assert set(top1) == {"fp32", "ptq", "qat"} and all(isinstance(v, float) for v in top1.values())
    assert top1["fp32"] > 50  # a trained model, so drift is measurable
    layers = summary["layers"]
    int8 = [r for r in layers if r["precision"] == "int8"]
    floats = [r for r in layers if r["precision"] == "float"]
    assert int8 and floats and summary["int8_layers"] == len(int8)
    # onnxruntime placement: the classifier is int8, thin convs (e.g. the 27-MAC stem conv) stay float, with a reason
    assert any(r["layer"] == "classifier.2" for r in int8)
    assert all("MACs/output" in r["reason"] for r in floats if r["layer"].startswith("stages.0."))
    assert summary["size"]["int8_bytes"] < summary["size"]["fp32_bytes"]
    assert summary["qat"]["epochs"][0]["epoch"] == 1
    assert out.with_name("int8.qat-epoch1.pt").exists()


def test_checkpoint_is_safe_and_restores_the_quantized_model(quantized):
    _, out, _, _ = quantized
    raw = torch.load(out, map_location="cpu", weights_only=True)  # no pickled objects
    assert raw["kind"] == "int8" and isinstance(raw["extra"]["nncf_config"], dict)
    handle = load_checkpoint(out)
    assert handle.kind == "int8"
    x = torch.randn(4, *handle.input_spec.shape(1)[1:])
    again = load_checkpoint(out)
    with torch.no_grad():
        assert torch.equal(handle.module(x), again.module(x))
        fp32 = load_checkpoint(quantized[0]).module(x)
    assert not torch.equal(handle.module(x), fp32)  # the fake-quant is really in place


def test_eval_runs_the_quantized_model_in_torch(quantized, run_cli):
    _, out, summary, data = quantized
    code, stdout, _ = run_cli("eval", out, "--data", data)
    assert code == 0, stdout
    assert f"{summary['top1']['qat']:.2f}" in stdout  # same model, same split, same number


def test_int8_onnx_is_standard_qdq_fused_by_onnxruntime_and_matches_torch(quantized, tmp_path):
    from edgeattn.quantize.onnx_export import export_quantized_onnx

    _, out, summary, _ = quantized
    handle = load_checkpoint(out)
    path = tmp_path / "int8.onnx"
    export_quantized_onnx(handle, path, dynamic_batch=True)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    ops = [(n.domain, n.op_type) for n in model.graph.node]
    assert all(domain in ("", "ai.onnx") for domain, _ in ops)
    assert ("", "QuantizeLinear") in ops and ("", "DequantizeLinear") in ops
    produced_by = {o: n for n in model.graph.node for o in n.output}
    for conv in (n for n in model.graph.node if n.op_type == "Conv" and n.input[1] in produced_by):
        users = [n.op_type for n in model.graph.node if conv.output[0] in n.input]
        assert "BatchNormalization" not in users  # BN folded into the int8 conv's scales
    int8_weights = [
        i for i in model.graph.initializer if i.data_type == onnx.TensorProto.INT8 and len(i.dims) >= 2
    ]
    assert len(int8_weights) == summary["int8_layers"]

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    fused = {n.op_type for n in onnx.load(str(tmp_path / "opt.onnx")).graph.node}
    assert "QLinearConv" in fused and "QGemm" in fused  # the placement gives onnxruntime its int8 kernels

    val = load_split("builtin:digits", "val", handle.config.input_size)
    x = val.to_model_input(handle.input_spec)
    ort_logits = np.concatenate(
        [sess.run(None, {"input": x[i : i + 64].numpy()})[0] for i in range(0, len(x), 64)]
    )
    with torch.no_grad():
        torch_logits = handle.module(x).numpy()
    labels = val.labels.numpy()
    top1_ort = 100 * float(np.mean(ort_logits.argmax(1) == labels))
    top1_torch = 100 * float(np.mean(torch_logits.argmax(1) == labels))
    assert abs(top1_ort - top1_torch) <= 0.5
    assert float(np.mean(ort_logits.argmax(1) == torch_logits.argmax(1))) >= 0.98


def test_float_module_for_converters_matches_without_fake_quant(quantized):
    from edgeattn.quantize.checkpoint import float_module

    handle = load_checkpoint(quantized[1])
    plain = float_module(handle)
    assert not any("nncf" in type(m).__module__ for m in plain.modules())
    x = torch.randn(2, *handle.input_spec.shape(1)[1:])
    with torch.no_grad():
        assert torch.allclose(plain(x), handle.module(x), atol=0.5)  # same function up to quantization noise


# ------------------------------------------------------------------------------------------ bad input
def _npz(path, images, labels):
    np.savez(path, images=images, labels=labels)
    return path


@pytest.mark.parametrize(
    "case",
    [
        "already_quantized",
        "calib_size_zero",
        "mismatched_classes",
        "nan_data",
        "negative_max_drop",
        "unknown_ignored",
        "bad_preset",
    ],
)
def test_bad_input_is_one_clear_error_and_writes_nothing(case, quantized, tmp_path, run_cli):
    ckpt, qckpt, _, _ = quantized
    out = tmp_path / "out.pt"
    data = "builtin:digits"
    args: list = []
    if case == "already_quantized":
        ckpt, expect = qckpt, "already quantized"
    elif case == "calib_size_zero":
        args, expect = ["--calib-size", "0"], "calib-size"
    elif case == "mismatched_classes":
        rng = np.random.default_rng(0)
        data, expect = (
            str(
                _npz(
                    tmp_path / "three.npz",
                    rng.integers(0, 255, (40, 32, 32, 3), dtype=np.uint8),
                    np.arange(40) % 3,
                )
            ),
            "classes",
        )
    elif case == "nan_data":
        imgs = np.random.default_rng(0).random((40, 32, 32, 3)).astype(np.float32)
        imgs[3, 1, 1, 1] = np.nan
        data, expect = str(_npz(tmp_path / "nan.npz", imgs, np.arange(40) % 10)), "NaN"
    elif case == "negative_max_drop":
        args, expect = ["--max-drop", "-1"], "--max-drop -1.0 is outside [0, 100]"
    elif case == "unknown_ignored":
        args, expect = ["--ignored", "no.such.layer"], "matches no layer"
    else:
        args, expect = ["--preset", "fastest"], "preset"
    code, stdout, stderr = run_cli("quantize", ckpt, "--data", data, "--out", out, *args)
    assert code == 2, stdout + stderr
    assert expect in stdout + stderr and "Traceback" not in stdout + stderr
    assert not out.exists() and not list(tmp_path.glob(".out.pt.*"))


def test_export_refuses_fp32_handle_and_old_opset(tmp_path, quantized):
    from edgeattn.errors import InputError
    from edgeattn.quantize.onnx_export import export_quantized_onnx

    with pytest.raises(InputError, match="quantized checkpoint"):
        export_quantized_onnx(ModelHandle.new(tiny_config(KEY)), tmp_path / "x.onnx")
    with pytest.raises(InputError, match="opset"):
        export_quantized_onnx(load_checkpoint(quantized[1]), tmp_path / "x.onnx", opset=11)
    assert not (tmp_path / "x.onnx").exists()


def test_corrupt_quantizer_config_is_refused(quantized, tmp_path):
    """A checkpoint naming a module outside NNCF's quantizers is refused, never imported."""
    from edgeattn.errors import InputError

    payload = torch.load(quantized[1], map_location="cpu", weights_only=True)
    payload["extra"]["nncf_config"]["compression_state"][0]["module_path"] = "os"
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    with pytest.raises(InputError, match="malformed quantizer config"):
        load_checkpoint(bad)
    assert zipfile.is_zipfile(bad)


def test_torchrun_two_processes_run_ddp_qat_and_rank0_saves(tmp_path, trained, small_data):
    out, js = tmp_path / "ddp.pt", tmp_path / "ddp.json"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "edgeattn",
        "quantize",
        str(trained(KEY)),
        "--data",
        small_data,
        "--qat",
        "--epochs",
        "1",
        "--calib-size",
        "32",
        "--batch-size",
        "32",
        "--out",
        str(out),
        "--json",
        str(js),
    ]
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1", "EDGEATTN_QUIET": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads(js.read_text())
    assert summary["qat"]["distributed"] == {"world": 2, "backend": "gloo"}
    assert load_checkpoint(out).kind == "int8"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.json", "ddp.pt", "ddp.qat-epoch1.pt"]
