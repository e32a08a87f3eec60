"""Bring your own artifact: an ONNX that edgeattn did not export (plain `torch.onnx.export`, no
manifest) is evaluated, validated and benchmarked through the CLI with the input spec given on the
command line, and gives the same predictions as the same model exported by edgeattn."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers.artifacts import fp32_onnx
from helpers.models import trained_checkpoint

VGG = "attn_vgg11_linear"  # tiny trained attn_vgg11, 32x32 inputs, builtin:digits


class ChannelsLast(torch.nn.Module):
    """A model that takes NHWC input (a layout edgeattn refuses, since it feeds NCHW)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.inner(t.permute(0, 3, 1, 2))


def plain_export(path, dynamic: bool = True, channels_last: bool = False):
    """The trained tiny model exported the way a user would, without edgeattn: no manifest."""
    from edgeattn.checkpoint import load_checkpoint

    module = load_checkpoint(trained_checkpoint(VGG)).module.eval()
    x = torch.zeros(1, 3, 32, 32)
    if channels_last:
        module, x = ChannelsLast(module), torch.zeros(1, 32, 32, 3)
    axes = {"pixels": {0: "n"}, "scores": {0: "n"}} if dynamic else None
    torch.onnx.export(
        module,
        (x,),
        str(path),
        input_names=["pixels"],
        output_names=["scores"],
        dynamic_axes=axes,
        dynamo=False,
    )
    assert not path.with_name(path.name + ".json").exists()
    return path


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return plain_export(tmp_path_factory.mktemp("byo") / "theirs.onnx")


def spec_flags(ckpt) -> list[str]:
    from edgeattn.checkpoint import load_checkpoint

    s = load_checkpoint(ckpt).input_spec
    return ["--mean", ",".join(map(str, s.mean)), "--std", ",".join(map(str, s.std))]


def test_eval_matches_the_edgeattn_export(plain, run_cli, tmp_path):
    from edgeattn.byo import ArtifactSpec, artifact_manifest
    from edgeattn.data import load_split
    from edgeattn.runtime import open_runner

    ckpt, exported = trained_checkpoint(VGG), fp32_onnx(VGG)
    results = {}
    for name, args in (
        ("exported", [exported]),
        ("from_ckpt", [plain, "--input-spec-from", ckpt]),
        ("flags", [plain, *spec_flags(ckpt)]),
    ):
        code, out, err = run_cli("eval", *args, "--limit", "300", "--json", tmp_path / f"{name}.json")
        assert code == 0, out + err
        results[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert results["exported"]["top1"] > 50  # a trained model, well above chance (10 classes)
    assert results["from_ckpt"]["top1"] == results["exported"]["top1"] == results["flags"]["top1"]
    # Same predictions image by image, through the runners the CLI used.
    images = load_split("builtin:digits", "val", 32).subset(300).images
    ours = open_runner(exported).predict(images)
    theirs = open_runner(plain, manifest=artifact_manifest(plain, ArtifactSpec(input_spec_from=str(ckpt))))
    assert theirs.manifest.input_name == "pixels" and theirs.manifest.source_kind == "byo"
    got = theirs.predict(images)
    assert (got.argmax(1) == ours.argmax(1)).all()
    assert np.abs(got - ours).max() < 1e-3


def test_validate_passes_and_wrong_normalisation_is_caught(plain, run_cli, tmp_path):
    ckpt = trained_checkpoint(VGG)
    report = tmp_path / "ok.json"
    code, out, err = run_cli(
        "validate", plain, "--reference", ckpt, "--input-spec-from", ckpt, "--limit", "300", "--json", report
    )
    assert code == 0, out + err
    ok = json.loads(report.read_text())
    assert ok["metrics"]["agreement"] == pytest.approx(100.0) and not ok["warnings"]
    assert ok["artifact_info"]["source_kind"] == "byo"
    # Negative control: the same artifact fed with the wrong normalisation drifts measurably.
    bad = tmp_path / "bad.json"
    code, out, err = run_cli(
        "validate",
        plain,
        "--reference",
        ckpt,
        "--mean",
        "0.1",
        "--std",
        "0.9",
        "--limit",
        "300",
        "--json",
        bad,
    )
    assert code == 1, out + err  # a gate failed
    drift = json.loads(bad.read_text())
    assert drift["metrics"]["agreement"] < 90 and drift["metrics"]["kl"] > 0.05
    assert any("mean=" in w for w in drift["warnings"])


def test_bench_times_it_with_no_data_and_no_spec(plain, run_cli, tmp_path):
    static = plain_export(tmp_path / "static.onnx", dynamic=False)
    report = tmp_path / "bench.json"
    code, out, err = run_cli(
        "bench",
        plain,
        static,
        "--batch",
        "1",
        "--batch",
        "4",
        "--iters",
        "3",
        "--warmup",
        "1",
        "--json",
        report,
    )
    assert code == 0, out + err
    data = json.loads(report.read_text())
    rows = {(r["label"], r["batch"]) for r in data["rows"]}
    assert rows == {("theirs.onnx", 1), ("theirs.onnx", 4), ("static.onnx", 1)}
    assert all(r["precision"] == "fp32" and r["median_ms"] > 0 for r in data["rows"])
    assert any("static batch of 1" in s["reason"] for s in data["skipped"])


def test_compare_puts_it_beside_edgeattn_exports(plain, run_cli, tmp_path):
    """compare: the manifest-less ONNX takes --input-spec-from, the edgeattn export keeps its manifest;
    the same model both ways gives the same answers as the reference. Without a spec it is refused."""
    ckpt, exported = trained_checkpoint(VGG), fp32_onnx(VGG)
    report = tmp_path / "compare.json"
    args = ["compare", exported, plain, "--reference", ckpt, "--limit", "100"]
    code, out, err = run_cli(*args, "--input-spec-from", ckpt, "--json", report)
    assert code == 0, out + err
    rows = {r["artifact"].rsplit("/", 1)[-1]: r for r in json.loads(report.read_text())["rows"]}
    assert set(rows) == {exported.name, "theirs.onnx"}
    assert all(r["metrics"]["agreement"] == 100.0 and r["passed"] for r in rows.values()), rows
    code, out, err = run_cli(*args)
    assert code == 2 and "no manifest" in err and "--input-spec-from" in err, out + err
    assert len(err.strip().splitlines()) == 1


def test_bad_input_is_exit_2_with_one_line(plain, run_cli, tmp_path):
    ckpt = trained_checkpoint(VGG)

    def check(args, *words):
        code, out, err = run_cli(*args)
        assert code == 2, out + err
        assert len(err.strip().splitlines()) == 1 and all(w in err for w in words), err

    check(["eval", plain], "no manifest", "--input-spec-from", "--mean", "--std")
    check(["eval", plain, "--mean", "0.5"], "--std not given", "--input-spec-from")
    check(["validate", plain, "--reference", ckpt], "no manifest", "--input-spec-from")
    static = plain_export(tmp_path / "static.onnx", dynamic=False)
    check(["eval", static, "--input-size", "48", *spec_flags(ckpt)], "32x32", "--input-size 48", "48x48")
    check(["bench", static, "--input-size", "48"], "32x32", "--input-size 48")
    check(["eval", fp32_onnx(VGG), "--mean", "0.5", "--std", "0.5"], "manifest", "drop --mean, --std")
    check(["eval", plain, "--input-spec-from", "no_such_model"], "neither a file nor a known model")
    check(["eval", plain, "--mean", "1,2", "--std", "1"], "has 2 numbers")
    check(["eval", plain, "--mean", "0.5", "--std", "0"], "--std", "> 0")
    nhwc = plain_export(tmp_path / "nhwc.onnx", channels_last=True)
    check(["bench", nhwc], "channels-last", "NCHW")
    code, out, err = run_cli("eval", plain, "--input-spec-from", ckpt, "--device", "ssh://nobody@127.0.0.1:1")
    assert code == 2 and "no manifest" in err and "devices" in err, out + err


@pytest.mark.slow  # a Core ML conversion and the reference executor: minutes on 2 cores
def test_a_core_ml_package_without_manifest_validates(run_cli, tmp_path):
    """The same for an .mlpackage: its declared input, run on the reference executor off macOS."""
    from edgeattn.export import export_artifact

    ckpt = trained_checkpoint(VGG)
    package = tmp_path / "theirs.mlpackage"
    export_artifact(ckpt, "coreml", package)
    package.with_name(package.name + ".json").unlink()  # as if someone else had converted it
    report = tmp_path / "coreml.json"
    code, out, err = run_cli(
        "validate",
        package,
        "--reference",
        ckpt,
        "--input-spec-from",
        ckpt,
        "--limit",
        "200",
        "--json",
        report,
    )
    assert code == 0, out + err
    data = json.loads(report.read_text())
    assert data["artifact_info"]["source_kind"] == "byo" and data["metrics"]["agreement"] > 95
    code, out, err = run_cli("eval", package, "--input-size", "48", *spec_flags(ckpt))
    assert code == 2 and "32x32" in err, out + err
