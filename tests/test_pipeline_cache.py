"""The step cache: a second run redoes nothing; changing the prune ratio redoes prune and everything
after it, nothing before; an output changed by hand is redone (--force: test_pipeline_failures.py)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

RECIPE = """
name: cachetest
model: {{checkpoint: {ckpt}}}
prune: {{ratio: {ratio}, finetune_epochs: 0, calib_size: 64, val_size: 100}}
export:
  targets:
    - {{target: onnx, precisions: [fp32]}}
    - {{target: tensorrt, precisions: [fp16]}}
validate: {{limit: 100, gates: {{max_top1_drop: 100, min_agreement: 0, max_kl: null}}}}
bench: {{iters: 3, warmup: 1, isolate: false}}
"""


def _mtimes(root):
    skip = ("manifest.json", "report.md", "junit.xml", ".run.lock")
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and p.name not in skip}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, trained):
    """Three runs of one recipe: first, unchanged, prune ratio changed."""
    from edgeattn.fileio import sha256_of
    from edgeattn.pipeline import run_recipe

    tmp = tmp_path_factory.mktemp("cache")
    recipe = tmp / "cachetest.yaml"
    ckpt = trained("attn_vgg11_linear")
    out_root = tmp / "exported"
    recipe.write_text(RECIPE.format(ckpt=ckpt, ratio=0.25))
    first = run_recipe(recipe, out_root=out_root, log=lambda m: None)
    manifest_first = json.loads(first.manifest.read_text())
    manifest_first["hashed_now"] = {
        a["id"]: sha256_of(first.root / a["path"]) for a in manifest_first["artifacts"]
    }
    before = _mtimes(first.root)
    second = run_recipe(recipe, out_root=out_root, log=lambda m: None)
    after = _mtimes(first.root)
    recipe.write_text(RECIPE.format(ckpt=ckpt, ratio=0.5))
    third = run_recipe(recipe, out_root=out_root, log=lambda m: None)
    return {
        "first": first,
        "second": second,
        "third": third,
        "manifest_first": manifest_first,
        "mtimes": (before, after),
        "recipe": recipe,
        "out_root": out_root,
    }


def _status(result):
    return {s.id: s.status for s in result.steps}


def test_first_run_does_every_step_and_skips_tensorrt_with_the_reason(runs):
    first = runs["first"]
    status = _status(first)
    assert status == {
        "train/baseline-eval": "ran",
        "prune/pruned": "ran",
        "prune/pruned-eval": "ran",
        "export/onnx-fp32": "ran",
        "export/tensorrt-fp16": "skipped",
        "validate/onnx-fp32": "ran",
        "bench/latency": "ran",
    }
    reason = next(s["reason"] for s in first.skipped if s["step"] == "export/tensorrt-fp16")
    assert "trtexec" in reason  # the skip says how to build the engine where TensorRT exists
    assert (first.root / "export" / "tensorrt-fp16.onnx").exists()  # the ONNX for trtexec was written
    assert first.passed


def test_manifest_lists_every_artifact_with_hash_accuracy_drift_latency(runs):
    m = runs["manifest_first"]
    assert m["format"] == "edgeattn.run" and m["status"] == "passed"
    assert "prune" in m["recipe"]["text"] and m["recipe"]["resolved"]["prune"]["ratio"] == 0.25
    assert {"torch", "onnxruntime", "onnx", "edgeattn"} <= set(m["versions"])
    (art,) = m["artifacts"]
    assert art["id"] == "onnx-fp32" and art["target"] == "onnx" and art["precision"] == "fp32"
    assert art["sha256"] == m["hashed_now"]["onnx-fp32"]
    # the FP32 ONNX is the pruned model: the same accuracy on the same 100 images, to an image at most
    assert art["accuracy"]["top1"] == pytest.approx(art["accuracy"]["reference_top1"], abs=1.0)
    assert art["drift"]["top1_drop"] == pytest.approx(0, abs=1.0) and art["drift"]["agreement"] >= 99
    assert art["gates"]["passed"] is True
    assert art["latency"] and art["latency"][0]["median_ms"] > 0
    names = [c["name"] for c in m["checkpoints"]]
    assert names == ["baseline", "pruned"]
    assert m["checkpoints"][1]["params"] < m["checkpoints"][0]["params"]
    assert m["prune"]["heads"]["after"] < m["prune"]["heads"]["before"]


def test_report_and_junit_are_written(runs):
    first = runs["first"]
    report = first.report.read_text()
    assert "## Artifacts" in report and "## Skipped here" in report and "tensorrt-fp16" in report
    import re

    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert "plots/accuracy_vs_latency.png" in images and "prune/report/head_importance.png" in images
    for image in images:
        assert (first.root / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    suites = ET.parse(first.junit).getroot()
    cases = {c.get("name"): c for c in suites.iter("testcase")}
    assert cases["export/tensorrt-fp16"].find("skipped") is not None
    assert cases["max_top1_drop"].find("failure") is None


def test_second_run_redoes_nothing(runs):
    second = runs["second"]
    status = _status(second)
    assert "ran" not in status.values(), status
    assert status["export/tensorrt-fp16"] == "skipped"  # still listed, with its reason
    assert [s["step"] for s in second.skipped] == ["export/tensorrt-fp16"]
    before, after = runs["mtimes"]
    assert before == after  # no output was rewritten (plots included)
    assert second.artifacts == runs["first"].artifacts  # the same numbers, from the cache


def test_changing_the_prune_ratio_redoes_prune_and_everything_after_nothing_before(runs):
    status = _status(runs["third"])
    assert status["train/baseline-eval"] == "cached"
    assert all(v in ("ran", "skipped") for k, v in status.items() if not k.startswith("train/")), status
    third_m = json.loads(runs["third"].manifest.read_text())
    assert third_m["recipe"]["resolved"]["prune"]["ratio"] == 0.5
    assert third_m["prune"]["heads"]["after"] < runs["manifest_first"]["prune"]["heads"]["after"]
    assert third_m["artifacts"][0]["sha256"] != runs["manifest_first"]["artifacts"][0]["sha256"]


def test_an_output_changed_by_hand_is_redone(runs):
    from edgeattn.pipeline import run_recipe

    root = runs["third"].root
    (root / "export" / "onnx-fp32.onnx").write_bytes(b"tampered")
    again = run_recipe(runs["recipe"], out_root=runs["out_root"], log=lambda m: None)
    status = _status(again)
    assert status["export/onnx-fp32"] == "ran" and status["prune/pruned"] == "cached"
    assert (root / "export" / "onnx-fp32.onnx").read_bytes() != b"tampered"
