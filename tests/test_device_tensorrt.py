"""TensorRT engines built on the device they will run on (`export --target tensorrt --device URL`): a
device without TensorRT is one line saying what to install (exit 2, the validated ONNX kept); with
TensorRT and a GPU (a `gpu` test) the engine is built there, fetched, and validated on the device."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from helpers.models import tiny_config

from edgeattn.checkpoint import ModelHandle, save_checkpoint
from edgeattn.manifest import read_manifest


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "lin.pt"
    save_checkpoint(ModelHandle.new(tiny_config("attn_vgg11_linear")), path)
    return path


def test_device_without_tensorrt_exits_2_saying_what_to_install(run_cli, loopback_device, ckpt, tmp_path):
    out = tmp_path / "lin.engine"
    code, _, err = run_cli("export", ckpt, "--target", "tensorrt", "--dynamic-batch", "1:2:4", "--out", out,
                           "--device", loopback_device.url(), "--ssh-config", loopback_device.ssh_config)  # fmt: skip
    assert code == 2
    message = " ".join(err.split())
    assert "TensorRT is not installed on this device" in message and loopback_device.python in message
    assert "JetPack" in message and "-m pip install tensorrt" in message
    assert f"the TensorRT-ready ONNX was written and checked: {tmp_path / 'lin.onnx'}" in message
    assert not out.exists() and read_manifest(tmp_path / "lin.onnx").target == "onnx"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lin.onnx", "lin.onnx.json"]  # nothing half-written
    assert loopback_device.wait_no_agents() == []


def test_device_is_an_option_of_the_tensorrt_target_only(run_cli, ckpt, tmp_path):
    code, _, err = run_cli(
        "export", ckpt, "--target", "onnx", "--out", tmp_path / "m.onnx", "--device", "ssh://jetson"
    )
    assert (
        code == 2 and "--device does not apply to --target onnx" in err and not (tmp_path / "m.onnx").exists()
    )


def _tensorrt_gpu_reason() -> str | None:
    from edgeattn.errors import UnavailableError
    from edgeattn.runtime.trt_runner import require_tensorrt_gpu

    try:
        require_tensorrt_gpu()
    except UnavailableError as exc:
        return exc.problem
    return None


@pytest.mark.gpu
def test_engine_is_built_fetched_and_validated_on_the_device(run_cli, loopback_sshd, ckpt, tmp_path):
    reason = _tensorrt_gpu_reason()
    if reason:
        pytest.skip(f"needs TensorRT and a CUDA GPU: {reason}")
    url = loopback_sshd.url(python=sys.executable)  # this interpreter has TensorRT: the device's Python
    ssh = ["--device", url, "--ssh-config", loopback_sshd.ssh_config]
    out = tmp_path / "lin.engine"
    code, _, err = run_cli("export", ckpt, "--target", "tensorrt", "--precision", "fp16", "--dynamic-batch", "1:2:8",
                           "--out", out, *ssh)  # fmt: skip
    assert code == 0, err
    manifest = read_manifest(out)  # sha256 of the fetched engine checked against its manifest
    assert manifest.details["built_on"] == "ssh://edgeattn-loopback" and manifest.details["tensorrt"]
    assert (tmp_path / "lin.engine.build.log").read_text().strip()
    code, _, err = run_cli("validate", out, "--reference", ckpt, "--data", "builtin:digits", "--limit", "64",
                           "--max-top1-drop", "5", "--min-agreement", "90", "--max-kl", "0.05",
                           "--json", tmp_path / "v.json", *ssh)  # fmt: skip
    assert code == 0, err
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["artifact_info"]["runtime"].startswith("TensorRT") and report["device"]["gpus"]
    code, _, err = run_cli(
        "bench", out, "--iters", "5", "--batch", "1", "--batch", "8", "--json", tmp_path / "b.json", *ssh
    )
    assert code == 0, err
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert len(rows) == 2 and all(r["timer"].startswith("tensorrt device timer") for r in rows)
    assert loopback_sshd.wait_no_agents() == []
