"""The standing benchmark's pieces: moving weights to the deployment resolution, the INT8 verdict, and
(slow) a whole run on a tiny model."""

from __future__ import annotations

import json

import pytest
import torch

from edgeattn.bench.report import BenchReport, BenchRow


def test_at_resolution_keeps_weights_and_resizes_efficientformer_biases(tmp_path):
    from edgeattn.bench.variants import at_resolution
    from edgeattn.checkpoint import ModelHandle, load_checkpoint, save_checkpoint
    from edgeattn.models import ModelConfig

    torch.manual_seed(0)
    src = save_checkpoint(ModelHandle.new(ModelConfig("efficientformer_l1", 10, 64)), tmp_path / "e64.pt")
    out = at_resolution(src, 128, tmp_path / "e128.pt")
    a, b = load_checkpoint(src), load_checkpoint(out)
    assert b.config.input_size == 128 and b.input_spec.size == (128, 128)
    sa, sb = a.module.state_dict(), b.module.state_dict()
    bias = [k for k in sa if k.endswith("attention_biases")]
    assert bias and all(sa[k].shape[1] == 4 and sb[k].shape[1] == 16 for k in bias)  # 2x2 -> 4x4 token grid
    same = [k for k in sa if not k.endswith(("attention_biases", "attention_bias_idxs"))]
    assert all(torch.equal(sa[k], sb[k]) for k in same)
    with torch.no_grad():
        assert b.module(torch.zeros(1, 3, 128, 128)).shape == (1, 10)
    assert b.history[-1]["step"] == "resize"


def _row(label: str, precision: str, median: float, top1: float, base: bool = False) -> BenchRow:
    return BenchRow(artifact=label, label=label, runtime="onnxruntime 1.32.0 (CPUExecutionProvider)", runtime_kind="onnxruntime",
                    precision=precision, batch=1, median_ms=median, mean_ms=median, p90_ms=median, p99_ms=median, min_ms=median,
                    max_ms=median, std_ms=0.0, throughput_ips=1000 / median, iterations=5, first_run_ms=median, load_ms=1.0,
                    top1=top1, is_baseline=base)  # fmt: skip


def test_verdict_reports_int8_slower_than_fp32_and_vs_peer():
    from edgeattn.bench.standing import verdict

    rows = [
        _row("onnxruntime FP32", "fp32", 10.0, 90.0, base=True),
        _row("onnxruntime INT8 (edgeattn)", "int8", 12.5, 89.5),
        _row("onnxruntime INT8 (peer: quantize_static defaults)", "int8", 20.0, 88.0),
    ]
    lines = verdict("m", BenchReport(env={}, settings={}, rows=rows))
    assert "0.80× the speed of FP32" in lines[0] and "recommended for this CPU: FP32" in lines[0]
    assert "1.60× the peer's speed" in lines[1] and "at least as fast and as accurate" in lines[1]
    rows[1] = _row("onnxruntime INT8 (edgeattn)", "int8", 6.0, 89.5)
    assert "recommended for this CPU: INT8" in verdict("m", BenchReport(env={}, settings={}, rows=rows))[0]


def test_verdict_decides_accuracy_image_by_image():
    """A lower top-1 only counts as less accurate when McNemar's exact test says it is not chance."""
    import numpy as np

    from edgeattn.bench.standing import paired_comparisons, verdict

    rows = [
        _row("onnxruntime FP32", "fp32", 10.0, 40.0, base=True),
        _row("onnxruntime INT8 (edgeattn)", "int8", 9.0, 38.0),
        _row("onnxruntime INT8 (peer: quantize_static defaults)", "int8", 20.0, 38.6),
    ]
    peer = np.zeros(900, bool)
    peer[:347] = True  # 38.6 %
    close = peer.copy()
    close[:25] = False  # 25 only the peer gets right ...
    close[400:420] = True  # ... 20 only edgeattn: net -5 images, chance
    paired = paired_comparisons({"ort-int8-edgeattn": close, "ort-int8-peer": peer, "ort-fp32": peer})
    pair = paired["edgeattn_int8_vs_peer_int8"]
    assert (pair["ref_only_correct"], pair["art_only_correct"], pair["n"]) == (25, 20, 900)
    assert pair["mcnemar_p"] > 0.5
    line = verdict("m", BenchReport(env={}, settings={}, rows=rows), paired=paired)[1]
    assert "within chance" in line and "NOT" not in line and "McNemar p = " in line
    far = peer.copy()
    far[:60] = False  # 60 images lost, none gained: not chance
    paired = paired_comparisons({"ort-int8-edgeattn": far, "ort-int8-peer": peer})
    line = verdict("m", BenchReport(env={}, settings={}, rows=rows), paired=paired)[1]
    assert "significantly less accurate" in line and "NOT at least as fast and as accurate" in line


@pytest.mark.slow
def test_standing_benchmark_runs_on_a_tiny_model(tmp_path):
    from edgeattn.bench.standing import StandingModel, StandingSettings, run_standing

    tiny = StandingModel(
        "attn_vgg11", deploy_size=64, eval_size=32, options={"width": 0.25, "batch_norm": True}, epochs=1
    )
    settings = StandingSettings(batches=(1, 2), threads=1, warmup=1, seconds=0.1, min_iters=3, calib_eval=32, calib_deploy=8,
                                prune_finetune_epochs=0, rounds=3, turn_seconds=0.01, block_rounds=3,
                                block_turn_seconds=0.01, placement_budget=5)  # fmt: skip
    summary = run_standing(tmp_path, (tiny,), settings, log=lambda msg: None)
    assert json.loads((tmp_path / "attn_vgg11.json").read_text())["edgeattn_placement"]["input_shape"] == [
        1,
        3,
        64,
        64,
    ]
    for name in ("attn_vgg11.json", "standing.json", "bench.png", "README-table.md"):
        assert (tmp_path / name).exists(), name
    result = json.loads((tmp_path / "attn_vgg11.json").read_text())
    report = BenchReport.from_dict(result["report"])
    labels = {r.label for r in report.rows}
    assert {
        "torch eager FP32",
        "onnxruntime FP32",
        "onnxruntime INT8 (peer: quantize_static defaults)",
        "onnxruntime INT8 (peer: quantize_static, documented CPU settings)",
        "onnxruntime INT8 (peer: NNCF ONNX PTQ)",
    } <= labels
    assert report.baseline == "onnxruntime FP32"
    assert all(r.top1 is not None and "32px" in r.accuracy_note for r in report.rows)
    assert {r.batch for r in report.rows} == {1, 2}  # batch 1 from the rounds, batch 2 from fresh processes
    # batch 2 only for FP32 and edgeattn's artifacts; every row has the peak RSS of its fresh process
    assert {r.label for r in report.rows if r.batch == 2} == {
        "onnxruntime FP32",
        "onnxruntime INT8 (edgeattn)",
        "onnxruntime FP32, 50% heads pruned",
    }
    assert sum(r.batch == 1 for r in report.rows) == len(labels)
    assert all(r.peak_rss_mb for r in report.rows)
    assert all("interleaved" in r.timer for r in report.rows if r.batch == 1)
    timing = result["interleaved"]["timing"]
    assert len(timing["orders"]) == 3 and all(len(v) == 3 for v in timing["round_median_ms"].values())
    ratios = result["interleaved"]["ratios"]
    assert "ort-int8-edgeattn_vs_ort-int8-nncf" in ratios and "torch-fp32_vs_ort-fp32" in ratios
    assert all(r["low"] <= r["point"] <= r["high"] for r in ratios.values())
    blocks = result["attention_blocks"]
    assert blocks["all_heads"]["blocks"] >= 1 and blocks["pruned"]["heads"] < blocks["all_heads"]["heads"]
    md = (tmp_path / "README-table.md").read_text()
    assert "onnxruntime FP32" in md and "1.00× (base)" in md and "b1 vs ORT FP32 (95 % interval)" in md
    assert "Attention blocks alone" in md and "interleaved rounds" in md
    assert "Peer, onnxruntime INT8 (peer: quantize_static, documented CPU settings): quant_pre_process" in md
    assert "model_type=None" in md  # attn_vgg11 is no transformer
    assert summary["models"][0]["model"]["name"] == "attn_vgg11"
    assert list(
        (tmp_path / "models").glob("attn_vgg11-32px-e1-*.pt")
    )  # the trained weights are cached for the next run
