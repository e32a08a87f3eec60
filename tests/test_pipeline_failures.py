"""A step that fails stops the run with one line and keeps earlier outputs; a failed gate makes
`edgeattn run` exit 1 with a JUnit failure (and still exits 1 when nothing is redone)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

RECIPE = """
name: {name}
model: {{checkpoint: {ckpt}}}
{extra}
validate: {{limit: 100, gates: {gates}}}
bench: {{enabled: false}}
"""


def _write(tmp_path, ckpt, name, extra, gates="{max_top1_drop: 100, min_agreement: 0, max_kl: null}"):
    path = tmp_path / f"{name}.yaml"
    path.write_text(RECIPE.format(name=name, ckpt=ckpt, extra=extra, gates=gates))
    return path


def test_failed_step_stops_the_run_and_keeps_earlier_outputs(run_cli, tmp_path, trained):
    ckpt = trained("attn_vgg11_linear")
    out_root = tmp_path / "exported"
    # A Core ML image input takes one image per prediction: the exporter refuses batch 2 when it runs,
    # after the ONNX export before it has finished.
    bad = """
export:
  batch: 2
  targets:
    - {target: onnx, precisions: [fp32]}
    - {target: coreml, precisions: [fp16], options: {input: image}}
"""
    recipe = _write(tmp_path, ckpt, "failing", bad)
    code, out, err = run_cli("run", recipe, "--out-root", out_root)
    assert code == 2, out + err
    assert "step export/coreml-fp16 failed" in err and "one image per prediction" in err
    assert "earlier outputs are kept" in err and len(err.strip().splitlines()) == 1
    root = out_root / "failing"
    onnx = root / "export" / "onnx-fp32.onnx"
    assert onnx.exists() and (root / "export" / ".onnx-fp32.step.json").exists()
    assert not (root / "export" / "coreml-fp16.mlpackage").exists()  # nothing half-written
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "coreml-fp16" in manifest["failure"]
    assert "failed" in (root / "report.md").read_text()
    cases = {c.get("name"): c for c in ET.parse(root / "junit.xml").getroot().iter("testcase")}
    assert cases["export/coreml-fp16"].find("failure") is not None

    # Fix the recipe: the finished steps are reused, not redone.
    recipe.write_text(
        recipe.read_text().replace(
            "    - {target: coreml, precisions: [fp16], options: {input: image}}\n", ""
        )
    )
    mtime = onnx.stat().st_mtime_ns
    code, out, err = run_cli("run", recipe, "--out-root", out_root)
    assert code == 0, out + err
    steps = {s["id"]: s["status"] for s in json.loads((root / "manifest.json").read_text())["steps"]}
    assert steps["train/baseline-eval"] == "cached" and steps["export/onnx-fp32"] == "cached"
    assert onnx.stat().st_mtime_ns == mtime


def test_failed_gate_exits_1_with_junit_failure_also_when_cached(run_cli, tmp_path, trained):
    ckpt = trained("attn_vgg11_linear")
    out_root = tmp_path / "exported"
    # Half the heads removed without fine-tuning, judged against the unpruned baseline: the pruned
    # model cannot agree with it on 99.9 % of the images.
    extra = """
prune: {ratio: 0.5, finetune_epochs: 0, calib_size: 64, val_size: 100}
export: {targets: [{target: onnx, precisions: [fp32]}]}
"""
    recipe = _write(
        tmp_path, ckpt, "gated", extra, gates="{max_top1_drop: null, min_agreement: 99.9, max_kl: null}"
    )
    recipe.write_text(recipe.read_text().replace("validate: {", "validate: {reference: baseline, "))
    for _ in range(2):  # the second run redoes nothing and must still fail
        code, out, err = run_cli("run", recipe, "--out-root", out_root)
        assert code == 1, out + err
        assert "gate(s) failed" in err and "onnx-fp32" in err and "agreement" in err
    root = out_root / "gated"
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["status"] == "gates_failed" and manifest["gates"]["failed"][0]["gate"] == "min_agreement"
    assert {s["status"] for s in manifest["steps"]} == {"cached"}
    failures = list(ET.parse(root / "junit.xml").getroot().iter("failure"))
    assert len(failures) == 1 and "agreement" in failures[0].get("message")
    assert "## Failed gates" in (root / "report.md").read_text()


def test_a_second_run_of_the_same_recipe_is_refused_while_one_is_running(tmp_path, trained):
    from filelock import FileLock

    from edgeattn.errors import InputError
    from edgeattn.pipeline import run_recipe

    recipe = _write(tmp_path, trained("attn_vgg11_linear"), "locked", "export: {targets: [{target: onnx}]}")
    root = tmp_path / "exported" / "locked"
    root.mkdir(parents=True)
    with FileLock(str(root / ".run.lock")):
        try:
            run_recipe(recipe, out_root=tmp_path / "exported", log=lambda m: None)
        except InputError as exc:
            assert "another `edgeattn run`" in str(exc)
        else:
            raise AssertionError("a concurrent run was not refused")


def test_force_redoes_every_step(run_cli, tmp_path, trained):
    recipe = _write(tmp_path, trained("attn_vgg11_linear"), "forced", "export: {targets: [{target: onnx}]}")
    recipe.write_text(recipe.read_text().replace("validate: {", "validate: {enabled: false, "))
    out_root = tmp_path / "exported"
    for args, expected in ((), "ran"), ((), "cached"), (("--force",), "ran"):
        code, out, err = run_cli("run", recipe, "--out-root", out_root, *args)
        assert code == 0, out + err
        steps = json.loads((out_root / "forced" / "manifest.json").read_text())["steps"]
        assert [s["id"] for s in steps] == ["train/baseline-eval", "export/onnx-fp32"]
        assert {s["status"] for s in steps} == {expected}, (args, steps)
    assert "2 step(s) ran, 0 reused" in out
