"""Trustworthy ratios: the bootstrap interval over rounds (with a negative control), the interleaved
timer (it really interleaves, and records the order), and the verdict text that follows the intervals.
No test asserts how fast anything is."""

from __future__ import annotations

import numpy as np
import pytest

from edgeattn.bench.stats import FASTER, SAME, SLOWER, speed_ratio_interval
from edgeattn.interleave import time_interleaved


def test_consistently_faster_variant_gets_an_interval_above_one():
    rng = np.random.default_rng(1)
    drift = 10.0 + 3.0 * np.sin(np.arange(20) / 3)  # machine load drifts over the run ...
    ref = drift * rng.normal(1.0, 0.03, 20)
    fast = drift / 1.25 * rng.normal(1.0, 0.03, 20)  # ... and the variant is 1.25x faster in every round
    r = speed_ratio_interval(ref, fast)
    assert r.rounds == 20
    assert 1.2 < r.point < 1.3 and 1.0 < r.low < r.point < r.high < 1.35
    assert r.verdict == FASTER and r.to_dict()["verdict"] == FASTER
    assert speed_ratio_interval(fast, ref).verdict == SLOWER  # the same numbers the other way round
    assert r.text().startswith(f"{r.point:.2f}× (")


def test_negative_control_same_distribution_interval_includes_one():
    """Two variants drawn from one distribution: the interval includes 1.0 (no verdict) in about 95 %
    of runs. (The percentile bootstrap over 20 rounds is a little anticonservative: ~8 % here.)"""
    verdicts = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        a, b = rng.lognormal(np.log(10), 0.1, 20), rng.lognormal(np.log(10), 0.1, 20)
        r = speed_ratio_interval(a, b, resamples=1000)
        verdicts.append(r.verdict)
        if r.verdict == SAME:
            assert r.low <= 1.0 <= r.high
    assert verdicts.count(SAME) / len(verdicts) > 0.88
    # and identical rounds give exactly 1.0 with a zero-width interval
    same = speed_ratio_interval(a, a)
    assert same.point == pytest.approx(1.0) and same.low == pytest.approx(1.0) and same.verdict == SAME


def test_interval_is_seeded_and_narrows_with_more_rounds():
    rng = np.random.default_rng(3)
    ref, var = rng.lognormal(np.log(10), 0.1, 80), rng.lognormal(np.log(9), 0.1, 80)
    few, many = speed_ratio_interval(ref[:8], var[:8]), speed_ratio_interval(ref, var)
    assert (many.high - many.low) < (few.high - few.low)
    assert speed_ratio_interval(ref, var, seed=5) == speed_ratio_interval(ref, var, seed=5)


@pytest.mark.parametrize("ref, var", [([1.0], [1.0]), ([1.0, 2.0], [1.0]), ([1.0, 0.0], [1.0, 1.0])])
def test_interval_refuses_bad_rounds(ref, var):
    with pytest.raises(ValueError):
        speed_ratio_interval(ref, var)


def test_interleaved_timer_runs_every_variant_each_round_in_recorded_shuffled_orders():
    calls: list[str] = []
    runs = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c", "d")}
    fake_ms = {"a": 1.0, "b": 2.0, "c": 4.0, "d": 8.0}

    def timer(fn):  # a clock that reports a fixed latency per variant, so the turn sizes are known
        fn()
        return fake_ms[calls[-1]]

    res = time_interleaved(runs, rounds=12, turn_seconds=0.008, warmup=2, settle_s=0.0, seed=3, timer=timer)
    assert res.iterations == {"a": 8, "b": 4, "c": 2, "d": 1}  # each turn lasts ~8 ms
    assert len(res.orders) == 12 and all(sorted(o) == ["a", "b", "c", "d"] for o in res.orders)
    assert len({tuple(o) for o in res.orders}) > 1  # shuffled, not one fixed order
    timed = calls[8:]  # after 2 warm-up calls per variant
    expected = [n for order in res.orders for n in order for _ in range(res.iterations[n])]
    assert timed == expected  # the recorded order is the order the calls really happened in
    assert res.round_median_ms["c"] == [4.0] * 12 and res.median_ms("d") == 8.0
    again = time_interleaved(runs, rounds=12, turn_seconds=0.008, warmup=2, settle_s=0.0, seed=3, timer=timer)
    assert again.orders == res.orders  # seeded


def test_interleaved_timer_on_real_onnxruntime_artifacts(tmp_path):
    """Two real ONNX artifacts opened in one process and timed in rounds (the structure, not the speed)."""
    import torch

    from edgeattn.bench.artifacts import export_onnx
    from edgeattn.bench.interleave import time_artifacts_interleaved
    from edgeattn.bench.stats import speed_ratio_interval
    from edgeattn.checkpoint import ModelHandle, save_checkpoint
    from edgeattn.models import ModelConfig

    torch.manual_seed(0)
    ckpt = save_checkpoint(
        ModelHandle.new(ModelConfig("attn_vgg11", 10, 32, options={"width": 0.25})), tmp_path / "m.pt"
    )
    onnx = export_onnx(ckpt, tmp_path / "m.onnx", max_batch=2)
    res = time_artifacts_interleaved(
        {"torch": ckpt, "ort": onnx}, threads=1, rounds=3, turn_seconds=0.01, warmup=1, settle_s=0.0
    )
    assert set(res.round_median_ms) == {"torch", "ort"} and all(
        len(v) == 3 for v in res.round_median_ms.values()
    )
    assert all(m > 0 for v in res.round_median_ms.values() for m in v)
    r = speed_ratio_interval(res.round_median_ms["ort"], res.round_median_ms["torch"])
    assert r.low <= r.point <= r.high and r.rounds == 3


# ------------------------------------------------------------------------------------------- report text
def _res(ratios: dict[str, tuple[float, float, float]], hits: dict[str, np.ndarray] | None = None) -> dict:
    from edgeattn.bench.standing import paired_comparisons

    out = {}
    for name, (point, low, high) in ratios.items():
        art, ref = name.split("_vs_")
        verdict = FASTER if low > 1 else SLOWER if high < 1 else SAME
        out[name] = {"variant": art, "reference": ref, "point": point, "low": low, "high": high, "rounds": 20,
                     "verdict": verdict}  # fmt: skip
    top1 = {k: float(v.mean() * 100) for k, v in (hits or {}).items()}
    return {"interleaved": {"ratios": out}, "paired": paired_comparisons(hits or {}), "top1": top1}


def test_interval_verdicts_follow_the_intervals():
    from edgeattn.bench.standing_report import interval_verdicts

    hits = np.zeros(900, bool)
    hits[:400] = True
    paired = {
        k: hits
        for k in ("ort-fp32", "ort-int8-edgeattn", "ort-int8-peer-docs", "ort-int8-nncf", "ort-int8-peer")
    }
    res = _res(
        {
            "ort-int8-edgeattn_vs_ort-fp32": (1.04, 0.97, 1.11),  # interval includes 1.0
            "ort-int8-edgeattn_vs_ort-int8-peer-docs": (0.80, 0.75, 0.85),
            "ort-int8-edgeattn_vs_ort-int8-nncf": (1.30, 1.22, 1.38),
            "ort-int8-edgeattn_vs_ort-int8-peer": (2.1, 2.0, 2.2),
            "ort-fp32-pruned_vs_ort-fp32": (1.02, 0.95, 1.09),
        },
        paired,
    )
    res["attention_blocks"] = {
        "all_heads": {"blocks": 3, "heads": 12, "median_ms": 4.0, "kinds": ["mhsa"]},
        "pruned": {"blocks": 3, "heads": 6, "median_ms": 2.5},
        "speedup": {"point": 1.6, "low": 1.5, "high": 1.7, "rounds": 20, "verdict": FASTER},
    }
    lines = interval_verdicts("m", res, {"ort-int8-peer-docs": "docs peer", "ort-int8-nncf": "nncf peer"})
    assert "1.04× (95 % interval 0.97–1.11 over 20 interleaved rounds) → no measurable difference" in lines[0]
    assert "recommended for this CPU: FP32 (INT8 is not measurably faster here)" in lines[0]
    assert "vs docs peer" in lines[1] and "→ slower" in lines[1] and "not less accurate" in lines[1]
    assert "vs nncf peer" in lines[2] and "→ faster" in lines[2]
    assert "every peer at no worse accuracy: no (2 of 3 peers)" in lines[4]
    assert (
        "→ no measurable difference" in lines[5]
        and "12 → 6 heads" in lines[5]
        and "4.00 → 2.50 ms" in lines[5]
    )
    res["interleaved"]["ratios"]["ort-int8-edgeattn_vs_ort-fp32"].update(low=1.05, verdict=FASTER)
    assert "recommended for this CPU: INT8." in interval_verdicts("m", res, {})[0]
    worse = hits.copy()
    worse[:80] = False  # INT8 loses 80 images, gains none: significant
    res.update(
        _res(
            {"ort-int8-edgeattn_vs_ort-fp32": (1.5, 1.4, 1.6)}, {"ort-fp32": hits, "ort-int8-edgeattn": worse}
        )
    )
    assert (
        "recommended for this CPU: FP32 (INT8 is significantly less accurate)"
        in interval_verdicts("m", res, {})[0]
    )


def test_standing_markdown_carries_interval_columns_block_table_and_verdicts():
    from dataclasses import asdict

    from edgeattn.bench.report import BenchReport, BenchRow
    from edgeattn.bench.standing import StandingSettings, standing_markdown

    labels = {"ort-fp32": "onnxruntime FP32", "ort-int8-edgeattn": "onnxruntime INT8 (edgeattn)",
              "ort-int8-nncf": "onnxruntime INT8 (peer: NNCF ONNX PTQ)"}  # fmt: skip

    def row(key: str, batch: int, ms: float) -> BenchRow:
        return BenchRow(artifact=key, label=labels[key], runtime="onnxruntime 1.32.0 (CPUExecutionProvider)",
                        runtime_kind="onnxruntime", precision="fp32" if key == "ort-fp32" else "int8", batch=batch,
                        median_ms=ms, mean_ms=ms, p90_ms=ms * 1.1, p99_ms=ms, min_ms=ms, max_ms=ms, std_ms=0.0,
                        throughput_ips=batch * 1000 / ms, iterations=5, first_run_ms=ms, load_ms=1.0, top1=50.0,
                        peak_rss_mb=700.0, is_baseline=key == "ort-fp32", speedup=1.0)  # fmt: skip

    report = BenchReport(
        env={}, settings={}, rows=[row(k, b, 10.0 * b) for b in (1, 8) for k in labels], title="m (224²)"
    )
    res = _res({"ort-int8-edgeattn_vs_ort-fp32": (1.31, 1.22, 1.40), "ort-int8-nncf_vs_ort-fp32": (1.10, 0.97, 1.2),
                "ort-int8-edgeattn_vs_ort-int8-nncf": (1.19, 1.1, 1.3)})  # fmt: skip
    res["interleaved"]["timing"] = {"median_ms": {"ort-fp32": 12.3, "ort-int8-edgeattn": 9.4, "ort-int8-nncf": 11.1},
                                    "p90_ms": {"ort-fp32": 13.0, "ort-int8-edgeattn": 9.9, "ort-int8-nncf": 12.0}}  # fmt: skip
    res["attention_blocks"] = {
        "all_heads": {"blocks": 2, "heads": 8, "median_ms": 3.0, "kinds": ["linear"]},
        "pruned": {"blocks": 2, "heads": 4, "median_ms": 2.9},
        "speedup": {"point": 1.03, "low": 0.98, "high": 1.08, "rounds": 20, "verdict": SAME},
    }
    res.update(model={"name": "m", "eval_size": 32, "epochs": 1, "batch_size": 16}, report=report.to_dict(), labels=labels,
               unavailable=[], peer_details={labels["ort-int8-nncf"]: {"quantizer": "nncf.quantize(...)", "docs": "NNCF-DOCS"}})  # fmt: skip
    md = standing_markdown([res], StandingSettings(), 60.0)
    assert "| m (224²) | onnxruntime INT8 (edgeattn) | int8 | 9.4 | 9.9 | 1.31× (1.22–1.40) |" in md
    assert "| m (224²) | onnxruntime FP32 | fp32 | 12.3 | 13.0 | 1.00× (base) |" in md
    assert (
        "| m (224²) | 2 (linear) | 8 → 4 | 3.00 | 2.90 | 1.03× (0.98–1.08) | no measurable difference |" in md
    )
    assert (
        "Peer, onnxruntime INT8 (peer: NNCF ONNX PTQ): nncf.quantize(...). As documented in: NNCF-DOCS." in md
    )
    assert "- m: edgeattn INT8 vs onnxruntime FP32 at batch 1: 1.31× (95 % interval 1.22–1.40" in md
    assert "recommended for this CPU: INT8." in md
    assert "measurably faster than every peer at no worse accuracy: yes" in md
    assert asdict(StandingSettings())["rounds"] >= 2
