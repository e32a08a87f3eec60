"""Recipes with a `devices:` section: bench and validate run on the loopback ssh device, and
manifest.json, report.md and junit.xml name the device of every number; a second run reuses the
device's results; a recipe naming an undefined device is refused before any work."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

RECIPE = """
name: on-device
model: {{checkpoint: {ckpt}}}
data: builtin:digits
export: {{targets: [{{target: onnx, precisions: [fp32]}}], dynamic_batch: [1, 1, 4]}}
devices:
  loop: {{url: "{url}", ssh_config: {ssh_config}, timeout: 600}}
validate: {{device: loop, limit: 120, layerwise: false}}
bench: {{device: [local, loop], iters: 3, warmup: 1, batches: [1, 2]}}
"""


def test_a_recipe_benchmarks_and_validates_on_its_device(run_cli, loopback_device, tmp_path, trained):
    dev = loopback_device
    recipe = tmp_path / "on-device.yaml"
    recipe.write_text(
        RECIPE.format(ckpt=trained("attn_vgg11_linear"), url=dev.url(), ssh_config=dev.ssh_config)
    )
    out_root = tmp_path / "exported"
    code, out, err = run_cli("run", recipe, "--out-root", out_root)
    assert code == 0, out + err
    root = out_root / "on-device"
    manifest = json.loads((root / "manifest.json").read_text())
    steps = {s["id"]: s["status"] for s in manifest["steps"]}
    assert steps["validate/onnx-fp32@loop"] == "ran" and "validate/onnx-fp32" not in steps
    assert steps["bench/latency"] == "ran" and steps["bench/latency@loop"] == "ran"

    facts = manifest["devices"]["loop"]
    assert facts["url"] == "ssh://edgeattn-loopback" and facts["facts"]["cpu"]["simd_flags"]
    assert facts["summary"].startswith("loop (ssh://edgeattn-loopback): ")
    assert "local" in manifest["devices"]
    art = manifest["artifacts"][0]
    assert art["accuracy"]["device"] == "loop" and art["drift"]["device"] == "loop"
    assert [v["device"] for v in art["validations"]] == ["loop"] and art["validations"][0]["passed"]
    assert art["validations"][0]["runtime"].endswith("on loop (ssh://edgeattn-loopback)")
    assert sorted({(r["device"], r["batch"]) for r in art["latency"]}) == [
        ("local", 1),
        ("local", 2),
        ("loop", 1),
        ("loop", 2),
    ]
    assert (root / "bench" / "bench@loop.json").exists() and (
        root / "validate" / "onnx-fp32@loop" / "report.json"
    ).exists()

    report = (root / "report.md").read_text()
    assert "| measured on |" in report
    assert "## Devices" in report and "- `loop`: loop (ssh://edgeattn-loopback): " in report
    assert "### Latency by device" in report and "### Validation by device" in report
    assert "accuracy: loop, latency: local" in report  # the artifacts table says where each number is from
    suites = {s.get("name"): s for s in ET.parse(root / "junit.xml").getroot().iter("testsuite")}
    suite = suites["on-device.validate.onnx-fp32@loop"]
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["device"].startswith("loop (ssh://edgeattn-loopback): ")

    code, out, err = run_cli("run", recipe, "--out-root", out_root)  # unchanged: nothing redone
    assert code == 0, out + err
    again = json.loads((root / "manifest.json").read_text())
    assert {s["status"] for s in again["steps"]} == {"cached"}
    assert again["devices"]["loop"]["facts"]["cpu"] == facts["facts"]["cpu"]
    assert dev.wait_no_agents() == []


def test_an_undefined_device_is_refused_before_any_work(run_cli, tmp_path, trained):
    recipe = tmp_path / "typo.yaml"
    recipe.write_text(
        RECIPE.format(
            ckpt=trained("attn_vgg11_linear"), url="ssh://pi@raspberrypi", ssh_config="ssh_config"
        ).replace("device: loop,", "device: lop,")
    )
    (tmp_path / "ssh_config").write_text("Host raspberrypi\n  User pi\n")
    code, out, err = run_cli("recipe", "check", recipe)
    text = " ".join((out + err).split())
    assert code == 2
    assert "validate.device[0]" in text and "unknown device 'lop'" in text and "did you mean 'loop'" in text
    code, _, err = run_cli("run", recipe, "--out-root", tmp_path / "exported")
    assert code == 2 and not (tmp_path / "exported" / "on-device").exists()
