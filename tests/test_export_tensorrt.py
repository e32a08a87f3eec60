"""TensorRT export. Here (no TensorRT/GPU) the export writes the checked ONNX and stops with exit 2 and the
trtexec command for the target version; the engine builds and runs are `gpu` tests (`pytest -m gpu`),
which skip without TensorRT + a CUDA GPU, or fail then with EDGEATTN_REQUIRE_GPU=1."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers.gpu import tensorrt_gpu_reason
from helpers.models import tiny_config

from edgeattn.checkpoint import ModelHandle, load_checkpoint, save_checkpoint
from edgeattn.errors import InputError, UnavailableError
from edgeattn.export import export_artifact, exporter_for
from edgeattn.export.base import BatchSpec, ExportRequest
from edgeattn.export.tensorrt import trtexec_command
from edgeattn.manifest import ArtifactManifest, read_manifest, write_manifest
from edgeattn.runtime import open_runner

NO_TRT = tensorrt_gpu_reason()
only_without_trt = pytest.mark.skipif(
    NO_TRT is None, reason="TensorRT and a GPU are present: the gpu tests build real engines"
)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "lin.pt"
    save_checkpoint(ModelHandle.new(tiny_config("attn_vgg11_linear")), path)
    return path


def float16_initializers(model: onnx.ModelProto) -> int:
    return sum(1 for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16)


@only_without_trt
@pytest.mark.parametrize(
    "version, onnx_precision, flags, absent",
    [
        ("8.6", "fp32", ["--fp16"], ["--stronglyTyped"]),  # JetPack 6.0: weakly typed, BuilderFlag.FP16
        ("10.3", "fp32", ["--fp16"], ["--stronglyTyped"]),
        (None, "fp16", [], ["--fp16", "--int8"]),  # default: newest (11.x), FP16 from an FP16 ONNX
    ],
)
def test_without_tensorrt_exit_2_with_checked_onnx_and_trtexec_command(
    tmp_path, ckpt, run_cli, version, onnx_precision, flags, absent
):
    out = tmp_path / "lin.engine"
    args = ["export", ckpt, "--target", "tensorrt", "--dynamic-batch", "1:4:16", "--out", out]
    code, _, stderr = run_cli(*args, *(["--tensorrt-version", version] if version else []))
    assert code == 2, stderr
    message = " ".join(stderr.split())
    assert "engine was not built" in message and "pip install 'edgeattn[tensorrt]'" in message
    assert f"trtexec --onnx={tmp_path / 'lin.onnx'}" in message
    assert "--minShapes=input:1x3x32x32" in message and "--maxShapes=input:16x3x32x32" in message
    assert all(f in message.split() for f in flags) and not any(f in message.split() for f in absent)
    assert not out.exists()
    onnx_path = tmp_path / "lin.onnx"
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model, full_check=True)
    manifest = read_manifest(onnx_path)  # hash-checked
    assert manifest.target == "onnx" and manifest.precision == onnx_precision
    assert manifest.details["for_target"] == "tensorrt" and manifest.details["tensorrt_precision"] == "fp16"
    readiness = manifest.details["tensorrt_readiness"]
    assert readiness["passed"] and readiness["tensorrt"]["source"] == ("requested" if version else "default")
    assert (float16_initializers(model) > 0) == (onnx_precision == "fp16")
    handle = load_checkpoint(ckpt)
    x = np.random.default_rng(0).standard_normal((5, 3, 32, 32)).astype(np.float32)
    got = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        ref = handle.module(torch.from_numpy(x)).numpy()
    tol = 1e-4 if onnx_precision == "fp32" else 5e-2 * max(1.0, float(np.abs(ref).max()))
    assert got.dtype == np.float32 and np.max(np.abs(got - ref)) <= tol  # FP32 I/O either way
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
        options={**exporter.option_defaults, "workspace_mib": 256, "tensorrt_version": "10.3"},
    )
    cmd = trtexec_command(req, tmp_path / "q.onnx").split()
    assert "--stronglyTyped" in cmd and "--fp16" not in cmd and not any("Shapes" in a for a in cmd)
    assert (
        "--memPoolSize=workspace:256" in cmd
        and f"--timingCacheFile={tmp_path / 'tensorrt-timing.cache'}" in cmd
    )
    fp16 = trtexec_command(dataclasses.replace(req, precision="fp16"), tmp_path / "q.onnx").split()
    assert "--fp16" in fp16 and "--stronglyTyped" not in fp16
    jetpack = dataclasses.replace(req, options={**req.options, "tensorrt_version": "8.6"})
    assert {"--int8", "--fp16"} <= set(trtexec_command(jetpack, tmp_path / "q.onnx").split())


def test_impossible_requests_are_refused_before_any_work(tmp_path, ckpt):
    out = tmp_path / "x.engine"
    with pytest.raises(InputError, match="no strongly typed networks"):
        export_artifact(ckpt, "tensorrt", out, precision="fp16", tensorrt_version="8.6", strongly_typed=True)
    with pytest.raises(InputError, match="TensorRT 9.0 is not supported"):
        export_artifact(ckpt, "tensorrt", out, tensorrt_version="9.0")
    with pytest.raises(InputError, match="--fp16-io needs --precision fp16"):
        export_artifact(ckpt, "tensorrt", out, precision="fp32", fp16_io=True)
    assert list(tmp_path.iterdir()) == []


def test_an_onnx_the_target_version_cannot_parse_stops_the_export_with_nothing_written(
    tmp_path, ckpt, run_cli
):
    """Opset 18 is past TensorRT 8.6's parser (up to 17): exit 1 naming the rule, before any device."""
    out = tmp_path / "lin.engine"
    code, _, err = run_cli(
        "export", ckpt, "--target", "tensorrt", "--opset", "18", "--tensorrt-version", "8.6", "--out", out
    )
    assert code == 1 and "not ready for TensorRT 8.6" in err and "opset 18" in err
    assert list(tmp_path.iterdir()) == []


@only_without_trt
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


@only_without_trt
def test_cuda_failures_raise_with_the_cuda_error_but_no_driver_means_no_gpu():
    cuda = pytest.importorskip("edgeattn.runtime.cuda")
    try:
        cudart = cuda.import_cudart()
    except UnavailableError:
        pytest.skip("cuda-python is not installed here")
    assert cuda.driver_cuda_version() is None  # this machine has no NVIDIA driver ...
    assert cuda.gpu_count() == 0  # ... which is "no GPU", not an error
    with pytest.raises(
        cuda.CudaError, match=r"cudaError\w+ \(\d+\)"
    ):  # but the CUDA error itself names itself
        cuda.cuda_call(cudart.cudaGetDeviceCount(), cudart)


@only_without_trt
def test_require_gpu_switch_turns_the_gpu_skip_into_a_failure(monkeypatch):
    """The gate of every gpu test (the `tensorrt_gpu` fixture): skip here, fail with EDGEATTN_REQUIRE_GPU=1."""
    from helpers.gpu import require_tensorrt_gpu

    monkeypatch.delenv("EDGEATTN_REQUIRE_GPU", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs TensorRT and a CUDA GPU"):
        require_tensorrt_gpu()
    monkeypatch.setenv("EDGEATTN_REQUIRE_GPU", "1")
    with pytest.raises(pytest.fail.Exception, match="EDGEATTN_REQUIRE_GPU=1 but TensorRT/GPU are missing"):
        require_tensorrt_gpu()


# --------------------------------------------------------------------------------------------------
# Where TensorRT and a GPU exist: `pytest -m gpu` (EDGEATTN_REQUIRE_GPU=1 on a GPU runner)
# --------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize(
    "precision, fp16_io", [("fp32", False), ("fp16", False), ("fp16", True)], ids=["fp32", "fp16", "fp16-io"]
)
def test_engines_build_run_and_validate(tensorrt_gpu, tmp_path, trained, precision, fp16_io):
    from edgeattn.export.tensorrt_versions import installed_tensorrt_version, policy_for
    from edgeattn.validate import Gates, validate_artifact

    ckpt = trained("mobilevit_xxs")
    out = tmp_path / f"mvit-{precision}.engine"
    options = {"fp16_io": True} if fp16_io else {}
    manifest = export_artifact(
        ckpt, "tensorrt", out, precision=precision, dynamic_batch=(1, 4, 16), **options
    )
    details = manifest.details
    policy = policy_for(installed_tensorrt_version())
    assert details["tensorrt"] == installed_tensorrt_version() and details["compute_capability"]
    assert details["strongly_typed"] == policy.strongly_typed(precision)
    assert out.exists() and (tmp_path / f"{out.name}.build.log").read_text().strip()
    assert details["timing_cache_reused"] is False and (tmp_path / "tensorrt-timing.cache").stat().st_size > 0
    again = export_artifact(
        ckpt, "tensorrt", tmp_path / "again.engine", precision=precision, dynamic_batch=(1, 4, 16), **options
    )
    assert again.details["timing_cache_reused"] is True

    runner = open_runner(out)
    assert runner.in_dtype == (np.float16 if fp16_io else np.float32)
    x = np.random.default_rng(0).standard_normal((7, 3, 64, 64)).astype(np.float32)
    onnx_in = x.astype(np.float16) if fp16_io else x
    onnx_out = (
        ort.InferenceSession(str(out.with_suffix(".onnx")), providers=["CPUExecutionProvider"])
        .run(None, {"input": onnx_in})[0]
        .astype(np.float32)
    )
    got = runner.run(x)
    runner.close()
    # FP32 with TF32 off matches onnxruntime closely; FP16 within 5 % of the logit scale.
    tol = 1e-3 if precision == "fp32" else 5e-2 * max(1.0, float(np.abs(onnx_out).max()))
    assert got.shape == (7, 10) and got.dtype == np.float32 and np.max(np.abs(got - onnx_out)) <= tol
    report = validate_artifact(out, ckpt, "builtin:digits", gates=Gates(max_top1_drop=1.0), limit=300)
    assert report.passed, [g.message for g in report.failed]


@pytest.mark.gpu
@pytest.mark.parametrize("placement", ["tensorrt", "onnxruntime"])
def test_int8_engines_per_placement(tensorrt_gpu, tmp_path, trained, placement):
    """The tensorrt placement builds and validates; the onnxruntime one (unsigned activations) is refused."""
    from edgeattn.quantize import quantize_checkpoint
    from edgeattn.validate import Gates, validate_artifact

    ckpt = trained("mobilevit_xxs")
    q = tmp_path / f"q-{placement}.pt"
    quantize_checkpoint(ckpt, "builtin:digits", q, calib_size=64, runtime=placement)
    out = tmp_path / f"q-{placement}.engine"
    if placement != "tensorrt":
        with pytest.raises(InputError, match="--runtime tensorrt"):
            export_artifact(q, "tensorrt", out, precision="int8")
        assert not out.exists()
        return
    manifest = export_artifact(q, "tensorrt", out, precision="int8")
    assert manifest.details["compute_capability"] and manifest.details["onnx_precision"] == "int8"
    onnx_path = out.with_suffix(".onnx")
    trt_report = validate_artifact(
        out, ckpt, "builtin:digits", gates=Gates(max_top1_drop=2.0, max_kl=0.1), limit=300
    )
    ort_report = validate_artifact(
        onnx_path, ckpt, "builtin:digits", gates=Gates(max_top1_drop=2.0, max_kl=0.1), limit=300
    )
    assert trt_report.passed, [g.message for g in trt_report.failed]
    assert abs(trt_report.metrics.artifact_top1 - ort_report.metrics.artifact_top1) <= 1.0
