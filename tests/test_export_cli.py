"""`edgeattn export` on the command line: success output, and every refusal is one clear line, exit 2,
with nothing (not even a temp file) left on disk."""

from __future__ import annotations

import os

import pytest
import torch
from helpers.models import tiny_config

from edgeattn.checkpoint import ModelHandle, save_checkpoint
from edgeattn.errors import GateFailure
from edgeattn.export import export_artifact
from edgeattn.fileio import sha256_of
from edgeattn.manifest import read_manifest


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "se.pt"
    save_checkpoint(ModelHandle.new(tiny_config("attn_vgg11_se")), path)
    return path


def listing(folder) -> list[str]:
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_export_cli_writes_artifact_and_manifest(tmp_path, ckpt, run_cli):
    out = tmp_path / "se.onnx"
    code, stdout, stderr = run_cli(
        "export",
        ckpt,
        "--target",
        "onnx",
        "--dynamic-batch",
        "1:4:8",
        "--out",
        out,
        "--json",
        tmp_path / "m.json",
    )
    assert code == 0, stderr
    assert "se.onnx" in stdout and "fp32" in stdout
    manifest = read_manifest(out)
    assert manifest.batch == {"min": 1, "opt": 4, "max": 8} and manifest.sha256 == sha256_of(out)
    assert listing(tmp_path) == ["m.json", "se.onnx", "se.onnx.json"]


@pytest.mark.parametrize("target,suffix", [("coreml", ".mlpackage"), ("onnx", ".onnx")])
def test_export_cli_prints_its_summary_for_every_target(tmp_path, ckpt, run_cli, target, suffix):
    """The summary (with the check against torch) prints for each target; a Core ML export once wrote a
    correct package and then crashed in the printer (exit 1)."""
    out = tmp_path / f"m{suffix}"
    code, stdout, stderr = run_cli("export", ckpt, "--target", target, "--precision", "fp16", "--out", out)
    assert code == 0, stderr
    assert "max |Δ| vs torch" in stdout and f"wrote {out}" in stdout.replace("\n", "")
    assert read_manifest(out).precision == "fp16"


def test_overwrite_needs_flag_and_keeps_old_file(tmp_path, ckpt, run_cli):
    out = tmp_path / "se.onnx"
    assert run_cli("export", ckpt, "--target", "onnx", "--out", out)[0] == 0
    before = sha256_of(out)
    code, _, stderr = run_cli("export", ckpt, "--target", "onnx", "--batch", "2", "--out", out)
    assert code == 2 and "already exists" in stderr and "--overwrite" in stderr
    assert sha256_of(out) == before and read_manifest(out).batch["opt"] == 1
    code, _, stderr = run_cli("export", ckpt, "--target", "onnx", "--batch", "2", "--out", out, "--overwrite")
    assert code == 0, stderr
    assert read_manifest(out).batch["opt"] == 2
    assert listing(tmp_path) == ["se.onnx", "se.onnx.json"]


@pytest.mark.parametrize("where", ["under_a_file", "procfs"])
def test_unwritable_out(tmp_path, ckpt, run_cli, where):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    out = blocker / "m.onnx" if where == "under_a_file" else "/proc/edgeattn-test/m.onnx"
    code, _, stderr = run_cli("export", ckpt, "--target", "onnx", "--out", out)
    assert code == 2 and "cannot write" in stderr, stderr
    assert listing(tmp_path) == ["file.txt"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "onnx", "--precision", "int8"], "needs a quantized checkpoint"),
        (["--target", "tensorrt", "--precision", "int8"], "needs a quantized checkpoint"),
        (["--target", "onnx", "--precision", "int8", "--opset", "12"], "too old for INT8 Q/DQ"),
        (["--target", "onnx", "--precision", "int8-weights"], "does not export --precision int8-weights"),
        (["--target", "coreml", "--precision", "int8"], "needs a quantized checkpoint"),
        (["--target", "onnx", "--opset", "9"], "--opset 9 is outside [11, 23]"),
        (["--target", "onnx", "--dynamic-batch", "8:2:4"], "not an ordered range"),
        (["--target", "onnx", "--dynamic-batch", "1-8"], "not MIN:OPT:MAX"),
        (["--target", "onnxx"], "did you mean 'onnx'"),
        (["--target", "onnx", "--workspace-mib", "64"], "does not apply to --target onnx"),
        (["--target", "coreml", "--batch", "4"], "one image per prediction"),
        (
            ["--target", "coreml", "--precision", "int8-weights", "--deployment-target", "iOS15"],
            "needs deployment target iOS16",
        ),
        (["--target", "coreml", "--deployment-target", "iOS99"], "deployment target 'iOS99' is unknown"),
        (["--target", "onnx", "--onnx-exporter", "dynamo", "--opset", "17"], "writes opset 18 or newer"),
    ],
)
def test_bad_requests_are_one_line_exit_2_nothing_written(tmp_path, ckpt, run_cli, args, message):
    suffix = {"onnx": ".onnx", "onnxx": ".onnx", "tensorrt": ".engine", "coreml": ".mlpackage"}[args[1]]
    code, stdout, stderr = run_cli("export", ckpt, *args, "--out", tmp_path / f"m{suffix}")
    assert code == 2, stderr
    assert message in stderr and "—" in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert listing(tmp_path) == []


def test_wrong_suffix_and_missing_checkpoint(tmp_path, ckpt, run_cli):
    code, _, stderr = run_cli("export", ckpt, "--target", "coreml", "--out", tmp_path / "m.onnx")
    assert code == 2 and "ending in .mlpackage" in stderr
    code, _, stderr = run_cli(
        "export", tmp_path / "nope.pt", "--target", "onnx", "--out", tmp_path / "m.onnx"
    )
    assert code == 2 and "does not exist" in stderr
    assert listing(tmp_path) == []


def test_failed_check_leaves_nothing(tmp_path, ckpt):
    """A verification that fails after the graph was built (here: an impossible tolerance) must not
    leave the artifact, its manifest or a temp file behind."""
    with pytest.raises(GateFailure, match="differs from torch"):
        export_artifact(ckpt, "onnx", tmp_path / "m.onnx", atol=1e-12)
    assert listing(tmp_path) == []


def test_unknown_target_option(tmp_path, ckpt):
    from edgeattn.errors import InputError

    with pytest.raises(InputError, match="has no option colour"):
        export_artifact(ckpt, "onnx", tmp_path / "m.onnx", colour="red")


def test_quantized_default_precision_is_int8_and_float_refused(tmp_path, ckpt):
    """A quantized checkpoint exports as int8 by default and refuses float precisions."""
    from edgeattn.checkpoint import load_checkpoint
    from edgeattn.errors import InputError

    handle = load_checkpoint(ckpt)
    handle.kind = "int8"  # only the kind matters for the request checks, which run before any export
    with pytest.raises(InputError, match="exports only as --precision int8"):
        export_artifact(handle, "onnx", tmp_path / "m.onnx", precision="fp16")
    with pytest.raises(InputError, match="too old for INT8"):
        export_artifact(handle, "onnx", tmp_path / "m.onnx", opset=11)  # default precision: int8
    assert listing(tmp_path) == []


def test_usage_errors_exit_2(tmp_path, ckpt, run_cli):
    code, _, stderr = run_cli(
        "export", ckpt, "--target", "onnx", "--batch", "0", "--out", tmp_path / "m.onnx"
    )
    assert code == 2 and "--batch" in stderr
    code, _, stderr = run_cli("export", ckpt, "--out", tmp_path / "m.onnx")
    assert code == 2 and "--target" in stderr
    assert listing(tmp_path) == []
