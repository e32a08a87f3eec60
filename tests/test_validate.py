"""`edgeattn validate` / `compare` / `eval` end to end on real artifacts of the tiny trained models:
INT8 QDQ ONNX on onnxruntime against the FP32 checkpoint in torch, broken artifacts, bad input."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

import pytest
from helpers.artifacts import FAMILIES, copy_artifact, fp32_onnx, int8_onnx, perturbed_onnx
from helpers.models import trained_checkpoint

DATA = "builtin:digits"
VGG = "attn_vgg11_linear"


def _reports(tmp_path):
    return {
        "--junit": tmp_path / "drift.xml",
        "--json": tmp_path / "drift.json",
        "--markdown": tmp_path / "drift.md",
    }


def _args(reports):
    return [x for kv in reports.items() for x in kv]


@pytest.mark.parametrize(
    "key", [VGG, *(pytest.param(k, marks=pytest.mark.slow) for k in FAMILIES if k != VGG)]
)
def test_int8_onnx_passes_default_gates_and_writes_reports(key, tmp_path, run_cli):
    ckpt, art = trained_checkpoint(key), int8_onnx(key)
    reports = _reports(tmp_path)
    code, out, err = run_cli("validate", art, "--reference", ckpt, "--data", DATA, *_args(reports))
    assert code == 0, out + err
    assert "all gates passed" in out and "top-1 agreement" in out and "decided by" in out
    cases = ET.parse(reports["--junit"]).getroot().findall(".//testcase")
    assert [c.get("name") for c in cases] == ["max_top1_drop", "min_agreement", "max_kl"]
    assert all(c.find("failure") is None for c in cases)
    data = json.loads(reports["--json"].read_text())
    assert data["passed"] is True and data["artifact_info"]["precision"] == "int8"
    assert "onnxruntime" in data["artifact_info"]["runtime"] and "torch" in data["reference_info"]["runtime"]
    assert data["metrics"]["n"] > 500 and data["metrics"]["kl"] > 0  # really INT8: not bit-identical
    assert "✅ passed" in reports["--markdown"].read_text()


def test_zero_drop_gate_fails_with_junit_failure_naming_the_gate(tmp_path, run_cli):
    """Only the drop gate is on (the others are opened wide): its failure alone must fail the run."""
    ckpt = trained_checkpoint(VGG)
    art = perturbed_onnx(fp32_onnx(VGG), tmp_path / "drops.onnx", scale=0.3)
    reports = _reports(tmp_path)
    code, out, err = run_cli(
        "validate", art, "--reference", ckpt, "--data", DATA, "--limit", "300",
        "--max-top1-drop", "0", "--min-agreement", "0", "--max-kl", "1000", *_args(reports),
    )  # fmt: skip
    assert code == 1, out + err
    assert "max_top1_drop" in err and "allowed 0.00 pp" in err and "min_agreement" not in err
    failures = {
        c.get("name"): c.find("failure") for c in ET.parse(reports["--junit"]).getroot().iter("testcase")
    }
    failure = failures["max_top1_drop"]
    assert (
        failure is not None
        and "top-1 drop" in failure.get("message")
        and "> allowed 0.00 pp" in failure.get("message")
    )
    data = json.loads(reports["--json"].read_text())
    assert data["passed"] is False and data["metrics"]["top1_drop"] > 0
    assert "❌ failed" in reports["--markdown"].read_text()


@pytest.mark.parametrize("broken", ["perturbed_weights", "wrong_normalisation"])
def test_broken_artifacts_fail_default_gates(broken, tmp_path, run_cli):
    from edgeattn.manifest import read_manifest

    ckpt, good = trained_checkpoint(VGG), int8_onnx(VGG)
    if broken == "perturbed_weights":
        art = perturbed_onnx(fp32_onnx(VGG), tmp_path / "bad.onnx", scale=0.3)
    else:  # a plausible mistake: [-1, 1] scaling instead of the model's mean/std
        spec = dict(read_manifest(good).input_spec, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
        art = copy_artifact(good, tmp_path / "bad.onnx", input_spec=spec)
    code, out, err = run_cli(
        "validate", art, "--reference", ckpt, "--data", DATA, "--json", tmp_path / "r.json"
    )
    assert code == 1, out + err
    data = json.loads((tmp_path / "r.json").read_text())
    failed = {g["name"] for g in data["gates"] if not g["passed"]}
    assert "max_kl" in failed
    if broken == "wrong_normalisation":
        assert any("mean=" in w for w in data["warnings"])


def _with_manifest(path, like, **changes):
    """Give `path` the manifest of artifact `like` (changed as given), hashed for `path`."""
    from edgeattn.manifest import read_manifest, write_manifest

    manifest = read_manifest(like)
    for k, v in changes.items():
        setattr(manifest, k, v)
    write_manifest(path, manifest)
    return path


def _fake_engine(tmp_path, like):
    """A TensorRT engine file with a proper manifest: it can only run where TensorRT and a GPU are."""
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"not a real plan")
    return _with_manifest(engine, like, target="tensorrt", precision="fp16")


def _untrained_reference(path, **changes):
    import dataclasses

    from helpers.models import tiny_config

    from edgeattn.checkpoint import ModelHandle, save_checkpoint

    return save_checkpoint(ModelHandle.new(dataclasses.replace(tiny_config(VGG), **changes)), path)


def test_bad_input_is_exit_2_with_one_clear_line(tmp_path, run_cli):
    from edgeattn.manifest import read_manifest

    ckpt, good = trained_checkpoint(VGG), int8_onnx(VGG)
    m = read_manifest(good)

    def check(args, *words):
        code, out, err = run_cli("validate", *args)
        assert code == 2, out + err
        assert len(err.strip().splitlines()) == 1 and all(w in err for w in words), err

    no_manifest = tmp_path / "bare.onnx"
    shutil.copy(good, no_manifest)
    check([no_manifest, "--reference", ckpt], "no manifest", "--input-spec-from", "--mean")
    # An artifact that does not fit its reference (untrained references: only their shape matters).
    seven = _untrained_reference(tmp_path / "seven.pt", num_classes=7)
    check([good, "--reference", seven], "predicts 10 classes", "predicts 7")
    bigger = _untrained_reference(tmp_path / "bigger.pt", input_size=64)
    check([good, "--reference", bigger], "takes 32x32", "64x64")
    # A manifest that does not fit its artifact.
    classes = copy_artifact(good, tmp_path / "classes.onnx", num_classes=7)
    check([classes, "--reference", ckpt], "outputs 10 classes", "manifest says 7")
    size = copy_artifact(good, tmp_path / "size.onnx", input_spec=dict(m.input_spec, size=[64, 64]))
    check([size, "--reference", ckpt], "32x32", "manifest says 64x64")
    check([_fake_engine(tmp_path, good), "--reference", ckpt], "TensorRT")
    check([tmp_path / "missing.onnx", "--reference", ckpt], "does not exist")
    check([good, "--reference", tmp_path / "nope.pt"], "nope.pt")
    check([good, "--reference", ckpt, "--data", "builtin:nope"], "nope")
    check([fp32_onnx(VGG), "--reference", ckpt, "--layerwise"], "--layerwise", "INT8")
    # Report paths are checked before any work: nothing is written for bad input.
    code, _, err = run_cli(
        "validate", good, "--reference", ckpt, "--junit", tmp_path / "no" / "x.xml", "--limit", "0"
    )
    assert code == 2 and not (tmp_path / "no").exists()


def test_coreml_package_runs_only_where_a_runner_exists(tmp_path, run_cli):
    """Without the Core ML runner (or off macOS without its reference executor) the message says so."""
    ckpt = trained_checkpoint(VGG)
    package = tmp_path / "m.mlpackage"
    package.mkdir()
    (package / "Manifest.json").write_text("{}")
    _with_manifest(package, int8_onnx(VGG), target="coreml")
    code, out, err = run_cli("validate", package, "--reference", ckpt)
    assert code == 2, out + err
    last = err.strip().splitlines()[-1]  # (importing coremltools may log a torch warning first)
    assert last.startswith("error:") and "m.mlpackage" in last


def test_compare_puts_artifacts_in_one_table_and_skips_unavailable_runtimes(tmp_path, run_cli):
    ckpt, fp32, int8 = trained_checkpoint(VGG), fp32_onnx(VGG), int8_onnx(VGG)
    engine = _fake_engine(tmp_path, int8)
    code, out, err = run_cli(
        "compare", fp32, int8, engine, "--reference", ckpt, "--data", DATA, "--limit", "300",
        "--json", tmp_path / "c.json", "--markdown", tmp_path / "c.md",
    )  # fmt: skip
    assert code == 0, out + err
    rows = json.loads((tmp_path / "c.json").read_text())["rows"]
    assert [r.get("precision") for r in rows[:2]] == ["fp32", "int8"]
    assert rows[0]["metrics"]["kl"] < 1e-6 < rows[1]["metrics"]["kl"]  # FP32 ONNX is torch to rounding
    assert rows[0]["metrics"]["agreement"] == 100.0
    assert "TensorRT" in rows[2]["skipped"]
    md = (tmp_path / "c.md").read_text()
    assert md.count("\n|") >= 5 and "skipped" in md


def test_eval_runs_every_artifact_kind_on_its_runtime(tmp_path, run_cli):
    ckpt, int8 = trained_checkpoint(VGG), int8_onnx(VGG)
    results = {}
    for name, path in (("ckpt", ckpt), ("int8", int8)):
        code, out, err = run_cli(
            "eval", path, "--data", DATA, "--limit", "300", "--json", tmp_path / f"{name}.json"
        )
        assert code == 0, out + err
        results[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert "torch" in results["ckpt"]["runtime"] and "onnxruntime" in results["int8"]["runtime"]
    assert results["int8"]["precision"] == "int8" and results["ckpt"]["n"] == results["int8"]["n"]
    assert abs(results["ckpt"]["top1"] - results["int8"]["top1"]) < 5
    code, _, err = run_cli("eval", _fake_engine(tmp_path, int8))
    assert code == 2 and "TensorRT" in err
