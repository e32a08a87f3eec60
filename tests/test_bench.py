"""The latency harness: statistics, timing loop, environment capture, reports, plot, baseline ratios.

These tests check that the harness measures and reports correctly on tiny real models (torch eager and
onnxruntime); they never assert how fast anything is.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeattn.bench import (
    BenchConfig,
    BenchReport,
    bench_artifacts,
    latency_stats,
    to_markdown,
    write_bench_plot,
)
from edgeattn.bench.env import cpu_info
from edgeattn.bench.harness import time_runs
from edgeattn.bench.report import render_rich
from edgeattn.bench.suite import accuracy_from_metrics
from edgeattn.errors import InputError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_latency_stats_match_numpy():
    samples = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0, 6.0, 7.0, 8.0, 9.0]
    s = latency_stats(samples, batch=4)
    a = np.array(samples)
    assert s["iterations"] == 10
    assert s["median_ms"] == pytest.approx(5.5)
    assert s["mean_ms"] == pytest.approx(5.5)
    assert s["min_ms"] == 1.0 and s["max_ms"] == 10.0
    assert s["p90_ms"] == pytest.approx(np.percentile(a, 90))
    assert s["p99_ms"] == pytest.approx(np.percentile(a, 99))
    assert s["std_ms"] == pytest.approx(a.std(ddof=1))
    assert s["throughput_ips"] == pytest.approx(4 * 1000 / 5.5)  # images per second from the mean
    with pytest.raises(ValueError):
        latency_stats([], 1)


def test_time_runs_counts_warmup_iters_and_budget():
    calls = []
    settings = BenchConfig(warmup=3, iters=7)
    samples = time_runs(lambda: calls.append(1), settings)
    assert len(samples) == 7 and len(calls) == 10  # warm-up runs are executed but not timed
    calls.clear()
    budget = BenchConfig(warmup=0, iters=None, seconds=0.05, min_iters=4)
    samples = time_runs(lambda: calls.append(1), budget)
    assert len(samples) >= 4 and len(calls) == len(samples)
    assert all(s >= 0 for s in samples)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batches": [0]},
        {"threads": 0},
        {"warmup": -1},
        {"iters": 0},
        {"seconds": -1.0},
        {"graph_optimization": "max"},
        {"execution_mode": "async"},
    ],
)
def test_bad_settings_are_input_errors(kwargs):
    with pytest.raises(InputError):
        BenchConfig.build(**kwargs)


def test_cpu_info_parses_flags_and_cores():
    x86 = (
        "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni\n"
        "physical id\t: 0\ncore id\t\t: 0\n\nprocessor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu\nphysical id\t: 0\ncore id\t\t: 0\n\n"
    )
    info = cpu_info(x86)
    assert info["model"] == "Test CPU 9000"
    assert info["simd_flags"] == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni"]
    assert info["int8_dot_product"] is True and info["physical_cores"] == 1
    arm = "processor\t: 0\nFeatures\t: fp asimd asimddp\nCPU part\t: 0xd0c\n\n"
    assert cpu_info(arm)["int8_dot_product"] is True
    assert cpu_info("flags\t: sse4_2 avx2\n")["int8_dot_product"] is False


def test_accuracy_from_metrics_shapes():
    assert accuracy_from_metrics({"val": {"top1": 91.5}}) == 91.5
    assert accuracy_from_metrics({"top1": 80}) == 80.0
    assert accuracy_from_metrics({"accuracy": {"top1": 70.0}}) == 70.0
    assert accuracy_from_metrics({"data": "x"}) is None and accuracy_from_metrics(None) is None


@pytest.fixture(scope="module")
def artifacts(trained, tmp_path_factory):
    """A trained tiny checkpoint, its FP32 ONNX (dynamic batch), a static-batch ONNX and the peer INT8."""
    import torch

    from edgeattn.bench.artifacts import peer_quantize_static, torch_onnx_export
    from edgeattn.checkpoint import load_checkpoint
    from edgeattn.data import load_split
    from edgeattn.manifest import read_manifest, write_manifest

    d = tmp_path_factory.mktemp("bench")
    ckpt = trained("attn_vgg11_linear")
    handle = load_checkpoint(ckpt)
    onnx = torch_onnx_export(handle, d / "m.onnx")
    calib = load_split("builtin:digits", "calib", handle.config.input_size).subset(16).images
    peer = peer_quantize_static(onnx, d / "m-peer-int8.onnx", calib)
    static = d / "m-static.onnx"  # batch fixed at 1: a batch sweep must skip batch 2 with the reason
    torch.onnx.export(handle.module, (torch.zeros(1, 3, 32, 32),), str(static), input_names=["input"], output_names=["logits"],
                      opset_version=17, dynamo=False)  # fmt: skip
    m = read_manifest(onnx)
    m.input_shape = [1, 3, 32, 32]
    write_manifest(static, m)
    return {"ckpt": ckpt, "onnx": onnx, "peer": peer, "static": static, "dir": d}


def test_bench_inline_rows_ratios_and_reports(artifacts, tmp_path):
    a = artifacts
    report = bench_artifacts(
        [a["ckpt"], a["onnx"], a["peer"], a["static"]],
        batches=[1, 2],
        threads=1,
        warmup=1,
        iters=3,
        baseline=a["onnx"],
        isolate=False,
    )
    by = {(r.label, r.batch): r for r in report.rows}
    assert set(by) == {(n, b) for n in (a["ckpt"].name, "m.onnx", "m-peer-int8.onnx") for b in (1, 2)} | {
        ("m-static.onnx", 1)
    }
    assert [(s.label, s.batch) for s in report.skipped] == [("m-static.onnx", 2)]
    assert "static batch of 1" in report.skipped[0].reason
    assert report.baseline == "m.onnx"
    for (label, batch), r in by.items():
        base = by[("m.onnx", batch)]
        assert r.iterations == 3 and r.min_ms <= r.median_ms <= r.p90_ms <= r.p99_ms <= r.max_ms
        assert r.speedup == pytest.approx(base.median_ms / r.median_ms)
        assert r.is_baseline == (label == "m.onnx")
        assert r.load_ms > 0 and r.peak_rss_mb and r.peak_rss_mb > 0 and r.macs and r.macs > 0
    assert by[(a["ckpt"].name, 1)].runtime.startswith("torch") and by[("m.onnx", 1)].runtime.startswith(
        "onnxruntime"
    )
    assert by[("m-peer-int8.onnx", 1)].precision == "int8"
    assert by[(a["ckpt"].name, 1)].top1 is not None  # the trained checkpoint carries its val accuracy
    assert by[("m.onnx", 1)].macs == by[(a["ckpt"].name, 1)].macs  # same architecture, same MACs
    env = report.env
    assert env["threads"] == 1 and env["cpu"]["logical_cores"] >= 1 and "onnxruntime" in env["versions"]

    # JSON round trip, Markdown, rich table and PNG.
    data = json.loads(json.dumps(report.to_dict()))
    again = BenchReport.from_dict(data)
    assert again.rows == report.rows and again.skipped == report.skipped
    md = to_markdown(report)
    assert "| m-peer-int8.onnx | onnxruntime CPU | int8 | 1 |" in md and "static batch of 1" in md
    render_rich(report)
    png = write_bench_plot(report, tmp_path / "bench.png")
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_default_baseline_is_first_fp32_and_extras_override(artifacts):
    a = artifacts
    report = bench_artifacts([a["peer"], a["onnx"]], batches=[1], threads=1, warmup=0, iters=2, isolate=False, macs=False,
                             extras={a["peer"]: {"top1": 50.0, "accuracy_note": "test"}}, labels={a["peer"]: "peer"})  # fmt: skip
    assert report.baseline == "m.onnx"
    peer = next(r for r in report.rows if r.label == "peer")
    assert peer.top1 == 50.0 and peer.accuracy_note == "test" and peer.macs is None


def test_runtime_not_here_is_skipped_with_reason(artifacts, tmp_path):
    """A TensorRT engine without TensorRT/GPU and (on Linux) a Core ML package are reported, not run."""
    import sys

    from edgeattn.manifest import read_manifest, write_manifest

    m = read_manifest(artifacts["onnx"])
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"serialized plan bytes")  # never opened: the runtime check comes first
    m.target = "tensorrt"
    write_manifest(engine, m)
    mlpackage = tmp_path / "m.mlpackage"
    (mlpackage / "Data").mkdir(parents=True)
    (mlpackage / "Manifest.json").write_text("{}")
    m.target = "coreml"
    write_manifest(mlpackage, m)
    report = bench_artifacts(
        [artifacts["onnx"], engine, mlpackage], threads=1, warmup=0, iters=2, isolate=False, macs=False
    )
    assert {r.label for r in report.rows} == {"m.onnx"}
    reasons = {s.label: s.reason for s in report.skipped}
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        assert "TensorRT is not installed" in reasons["m.engine"]
    if sys.platform != "darwin":
        assert "reference executor measures accuracy, not Core ML's speed" in reasons["m.mlpackage"]


def test_bad_artifacts_fail_before_timing(artifacts, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from edgeattn.manifest import read_manifest, write_manifest

    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(artifacts["onnx"].read_bytes()[:200])
    with pytest.raises(InputError, match="not a readable ONNX model"):  # read for its graph (no manifest)
        bench_artifacts([bad], isolate=False)
    write_manifest(bad, read_manifest(artifacts["onnx"]))  # a manifest that matches the truncated file
    with pytest.raises(InputError, match="not a readable ONNX model"):
        bench_artifacts([artifacts["onnx"], bad], isolate=False, iters=1, warmup=0)
    # A well-formed file onnxruntime cannot load (an operator no runtime knows).
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 32, 32])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["input"], ["logits"])], "g", [x], [y])
    unloadable = tmp_path / "unloadable.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(unloadable))
    write_manifest(unloadable, read_manifest(artifacts["onnx"]))
    with pytest.raises(InputError, match="onnxruntime cannot load"):
        bench_artifacts([unloadable], isolate=False, iters=1, warmup=0)
    with pytest.raises(InputError, match="cannot tell what kind"):
        bench_artifacts([Path(artifacts["dir"] / "m.onnx.json")], isolate=False)
    with pytest.raises(InputError, match="--runtime onnxruntime cannot run"):
        bench_artifacts([artifacts["ckpt"]], runtime="onnxruntime", isolate=False)
    with pytest.raises(InputError, match="given twice"):
        bench_artifacts([artifacts["onnx"], artifacts["onnx"]], isolate=False)
    broken_ckpt = tmp_path / "broken.pt"
    broken_ckpt.write_bytes(artifacts["ckpt"].read_bytes()[:1000])
    with pytest.raises(InputError, match="corrupt or truncated"):
        bench_artifacts([broken_ckpt], isolate=False)


@pytest.mark.gpu
def test_tensorrt_engine_is_timed_with_cuda_events(trained, tmp_path):
    """Where TensorRT and a GPU exist: an engine is measured with CUDA events, batch sweep inside its profile."""
    from edgeattn.export import export_artifact

    engine = tmp_path / "m.engine"
    export_artifact(
        trained("attn_vgg11_linear"), "tensorrt", engine, precision="fp16", dynamic_batch=(1, 1, 4)
    )
    report = bench_artifacts([engine], batches=[1, 4, 8], threads=1, warmup=2, iters=5)
    assert [r.batch for r in report.rows] == [1, 4]
    assert all("CUDA events" in r.timer and r.runtime.startswith("TensorRT") for r in report.rows)
    assert [(s.batch, "outside" in s.reason) for s in report.skipped] == [(8, True)]


@pytest.mark.macos
def test_coreml_package_is_timed_on_macos(trained, tmp_path):
    from edgeattn.export import export_artifact

    package = tmp_path / "m.mlpackage"
    export_artifact(trained("attn_vgg11_linear"), "coreml", package)
    report = bench_artifacts([package], threads=1, warmup=1, iters=3, compute_units="cpu_only")
    assert report.rows and report.rows[0].runtime == "Core ML (macOS)"
