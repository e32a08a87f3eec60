"""TensorRT: here (no TensorRT/GPU) the export stops with exit 2 after writing a valid ONNX; the engine
build and run tests are marked `gpu` and run where TensorRT and a CUDA GPU exist."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers.models import tiny_config

from edgeattn.checkpoint import ModelHandle, load_checkpoint, save_checkpoint
from edgeattn.errors import UnavailableError
from edgeattn.export import export_artifact, exporter_for
from edgeattn.export.base import BatchSpec, ExportRequest
from edgeattn.export.tensorrt import trtexec_command
from edgeattn.manifest import ArtifactManifest, read_manifest, write_manifest
from edgeattn.runtime import open_runner


def _tensorrt_gpu_reason() -> str | None:
    """None when TensorRT and a CUDA GPU are both present, else why not (for the skip message)."""
    from edgeattn.runtime.trt_runner import require_tensorrt_gpu

    try:
        require_tensorrt_gpu()
    except UnavailableError as exc:
        return exc.problem
    return None


NO_TRT = _tensorrt_gpu_reason()
needs_trt = pytest.mark.skipif(NO_TRT is not None, reason=f"needs TensorRT and a CUDA GPU: {NO_TRT}")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "lin.pt"
    save_checkpoint(ModelHandle.new(tiny_config("attn_vgg11_linear")), path)
    return path


@pytest.mark.skipif(NO_TRT is None, reason="TensorRT and a GPU are present: the gpu tests build real engines")
def test_without_tensorrt_exit_2_with_valid_onnx_and_trtexec_command(tmp_path, ckpt, run_cli):
    out = tmp_path / "lin.engine"
    code, _, stderr = run_cli(
        "export", ckpt, "--target", "tensorrt", "--dynamic-batch", "1:4:16", "--out", out
    )
    assert code == 2
    message = " ".join(stderr.split())
    assert "engine was not built" in message and "pip install 'edgeattn[tensorrt]'" in message
    assert f"trtexec --onnx={tmp_path / 'lin.onnx'}" in message and "--fp16" in message
    assert "--minShapes=input:1x3x32x32" in message and "--maxShapes=input:16x3x32x32" in message
    assert not out.exists()
    onnx_path = tmp_path / "lin.onnx"
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model, full_check=True)
    manifest = read_manifest(onnx_path)  # hash-checked
    assert manifest.target == "onnx" and manifest.precision == "fp32"
    assert manifest.details["for_target"] == "tensorrt" and manifest.details["tensorrt_precision"] == "fp16"
    handle = load_checkpoint(ckpt)
    x = np.random.default_rng(0).standard_normal((5, 3, 32, 32)).astype(np.float32)
    got = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        assert np.max(np.abs(got - handle.module(torch.from_numpy(x)).numpy())) <= 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lin.onnx", "lin.onnx.json"]


def test_trtexec_command_for_int8_and_static_batch(tmp_path, ckpt):
    handle = load_checkpoint(ckpt)
    exporter = exporter_for("tensorrt")
    req = ExportRequest(
        handle=handle,
        target="tensorrt",
        out=tmp_path / "q.plan",
        precision="int8",
        batch=BatchSpec.static(1),
        opset=17,
        options={**exporter.option_defaults, "workspace_mib": 256},
    )
    cmd = trtexec_command(req, tmp_path / "q.onnx")
    assert "--stronglyTyped" in cmd and "--fp16" not in cmd and "--minShapes" not in cmd
    assert (
        "--memPoolSize=workspace:256M" in cmd
        and f"--timingCacheFile={tmp_path / 'tensorrt-timing.cache'}" in cmd
    )
    fp16 = trtexec_command(dataclasses.replace(req, precision="fp16"), tmp_path / "q.onnx")
    assert "--fp16" in fp16 and "--stronglyTyped" not in fp16


@pytest.mark.skipif(NO_TRT is None, reason="TensorRT and a GPU are present")
def test_tensorrt_runner_unavailable_here(tmp_path, ckpt):
    engine = tmp_path / "x.engine"
    engine.write_bytes(b"not an engine")
    handle = load_checkpoint(ckpt)
    write_manifest(
        engine,
        ArtifactManifest(
            artifact=engine.name,
            target="tensorrt",
            precision="fp16",
            model=handle.config.to_dict(),
            input_spec=handle.input_spec.to_dict(),
            num_classes=10,
        ),
    )
    with pytest.raises(UnavailableError, match=r"pip install 'edgeattn\[tensorrt\]'"):
        open_runner(engine)


# --------------------------------------------------------------------------------------------------
# Where TensorRT and a GPU exist
# --------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@needs_trt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_builds_runs_and_reuses_timing_cache(tmp_path, ckpt, precision):
    out = tmp_path / f"lin-{precision}.engine"
    manifest = export_artifact(ckpt, "tensorrt", out, precision=precision, dynamic_batch=(1, 4, 16))
    assert out.exists() and (tmp_path / f"lin-{precision}.engine.build.log").read_text().strip()
    assert manifest.details["timing_cache_reused"] is False
    assert (tmp_path / "tensorrt-timing.cache").stat().st_size > 0
    again = export_artifact(
        ckpt, "tensorrt", tmp_path / "again.engine", precision=precision, dynamic_batch=(1, 4, 16)
    )
    assert again.details["timing_cache_reused"] is True

    runner = open_runner(out)
    x = np.random.default_rng(0).standard_normal((7, 3, 32, 32)).astype(np.float32)
    onnx_out = ort.InferenceSession(
        str(tmp_path / f"lin-{precision}.onnx"), providers=["CPUExecutionProvider"]
    ).run(None, {"input": x})[0]
    got = runner.run(x)
    tol = 1e-3 if precision == "fp32" else 5e-2 * max(1.0, float(np.abs(onnx_out).max()))
    assert got.shape == (7, 10) and np.max(np.abs(got - onnx_out)) <= tol
    runner.close()


@pytest.mark.gpu
@needs_trt
def test_int8_engine_from_quantized_checkpoint(tmp_path, trained):
    from edgeattn.data import load_split
    from edgeattn.quantize import quantize_checkpoint

    q = tmp_path / "q.pt"
    quantize_checkpoint(trained("attn_vgg11_linear"), "builtin:digits", q, calib_size=64)
    out = tmp_path / "q.engine"
    manifest = export_artifact(q, "tensorrt", out, precision="int8")
    assert manifest.details["strongly_typed"] in (True, False)
    val = load_split("builtin:digits", "val", 32).subset(200)
    trt_top1 = (open_runner(out).predict(val.images).argmax(1) == val.labels.numpy()).mean()
    ort_top1 = (open_runner(tmp_path / "q.onnx").predict(val.images).argmax(1) == val.labels.numpy()).mean()
    assert abs(trt_top1 - ort_top1) <= 0.01
