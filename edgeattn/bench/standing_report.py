"""Rendering the standing benchmark: verdicts from interleaved-round intervals, and README-table.md.

A verdict calls INT8 (or a pruned model) "faster" or "slower" than another variant only when the 95 %
bootstrap interval of their speed ratio over interleaved rounds (stats.py) excludes 1.0, and "less
accurate" only when McNemar's exact test on the images one gets right and the other wrong rejects
chance. The recommendation per model follows those two verdicts. `verdict` is the older single-pass
form, kept for reports that carry no rounds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgeattn.bench.report import BenchReport, env_line
from edgeattn.reporting import fmt_count, md_table

if TYPE_CHECKING:
    from edgeattn.bench.standing import StandingSettings

SIGNIFICANCE = 0.05  # a paired top-1 difference counts only when McNemar's exact test rejects at this level
PEERS = ("ort-int8-peer-docs", "ort-int8-nncf", "ort-int8-peer")  # best-configured first, then the defaults
# Paired comparisons written to OUT/<model>.json and used by the verdicts: (name, artifact, reference)
PAIRS = (("edgeattn_int8_vs_peer_int8", "ort-int8-edgeattn", "ort-int8-peer"),
         ("edgeattn_int8_vs_ort-int8-peer-docs", "ort-int8-edgeattn", "ort-int8-peer-docs"),
         ("edgeattn_int8_vs_ort-int8-nncf", "ort-int8-edgeattn", "ort-int8-nncf"),
         ("edgeattn_int8_vs_fp32", "ort-int8-edgeattn", "ort-fp32"))  # fmt: skip
PAIR_OF = {(art, ref): name for name, art, ref in PAIRS}


def paired_comparisons(hits: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Top-1 of two variants compared image by image (same val images): discordant counts, the
    paired-bootstrap interval of the drop and McNemar's exact p — a few images decide small gaps, so
    a gap only counts when the test says it is not chance."""
    from edgeattn.validate.metrics import paired_drop_interval

    out = {}
    for name, art, ref in PAIRS:
        if art in hits and ref in hits:
            interval = paired_drop_interval(hits[ref], hits[art])
            out[name] = {"artifact": art, "reference": ref, "n": int(len(hits[art])), **interval.to_dict()}
    return out


def significantly_worse(pair: dict[str, Any] | None) -> bool | None:
    """True/False when the paired test decides; None without paired data."""
    if not pair:
        return None
    worse = pair["ref_only_correct"] > pair["art_only_correct"]
    return bool(worse and pair["mcnemar_p"] < SIGNIFICANCE)


def paired_text(pair: dict[str, Any] | None, art: str, ref: str) -> str:
    if not pair:
        return ""
    return (
        f" (paired on {pair['n']} images: {pair['art_only_correct']} right only with {art}, {pair['ref_only_correct']} only with {ref}; "
        f"McNemar p = {pair['mcnemar_p']:.2f}, 95 % interval of the drop {pair['low']:+.1f} … {pair['high']:+.1f} pp)"
    )


def _row(report: BenchReport, label: str, batch: int):  # noqa: ANN202
    return next((r for r in report.rows if r.label == label and r.batch == batch), None)


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}"


def verdict(
    model_key: str, report: BenchReport, batch: int = 1, paired: dict[str, dict[str, Any]] | None = None
) -> list[str]:
    """The INT8 question answered per model from the measured rows: faster than FP32? than the peer tool?

    "As accurate" is decided image by image when `paired` (from `paired_comparisons`) is given: not
    significantly worse by McNemar's exact test; without it, by the top-1 numbers alone.
    """
    paired = paired or {}
    from edgeattn.bench.variants import VARIANTS

    fp32 = _row(report, VARIANTS.get("ort-fp32").label, batch)
    ours = _row(report, VARIANTS.get("ort-int8-edgeattn").label, batch)
    peer = _row(report, VARIANTS.get("ort-int8-peer").label, batch)
    lines = []
    if fp32 and ours:
        drop = (fp32.top1 or 0) - (ours.top1 or 0)
        faster = ours.median_ms < fp32.median_ms * 0.95
        rec = "INT8" if faster and drop <= 1.0 else "FP32"
        lines.append(
            f"{model_key}: edgeattn INT8 runs at {fp32.median_ms / ours.median_ms:.2f}× the speed of FP32 on onnxruntime CPU at batch {batch} "
            f"({ours.median_ms:.1f} vs {fp32.median_ms:.1f} ms), top-1 {_pct(ours.top1)} vs {_pct(fp32.top1)} % → recommended for this CPU: {rec}."
        )
    if ours and peer:
        pair = paired.get("edgeattn_int8_vs_peer_int8")
        worse = significantly_worse(pair)
        if worse is None:
            worse = (ours.top1 or 0) < (peer.top1 or 0)
        fast = ours.median_ms <= peer.median_ms
        accuracy = (
            "as accurate"
            if (ours.top1 or 0) >= (peer.top1 or 0)
            else "as accurate (the gap is within chance)"
            if not worse
            else "significantly less accurate"
        )
        lines.append(
            f"{model_key}: edgeattn INT8 vs peer INT8 at batch {batch}: {peer.median_ms / ours.median_ms:.2f}× the peer's speed "
            f"({ours.median_ms:.1f} vs {peer.median_ms:.1f} ms), top-1 {_pct(ours.top1)} vs {_pct(peer.top1)} %"
            f"{paired_text(pair, 'edgeattn', 'the peer')} — "
            f"{'at least as fast' if fast else 'SLOWER'} and {accuracy}"
            f"{'' if fast and not worse else ' — NOT at least as fast and as accurate'}."
        )
    return lines


# ---------------------------------------------------------------------------- verdicts from intervals
def ratio_name(variant: str, reference: str) -> str:
    return f"{variant}_vs_{reference}"


def _ratio(res: dict[str, Any], variant: str, reference: str) -> dict[str, Any] | None:
    return (res.get("interleaved") or {}).get("ratios", {}).get(ratio_name(variant, reference))


def ratio_text(r: dict[str, Any]) -> str:
    """`1.23× (95 % interval 1.18–1.29, 15 rounds) → faster`."""
    return (
        f"{r['point']:.2f}× (95 % interval {r['low']:.2f}–{r['high']:.2f} over {r['rounds']} interleaved rounds) "
        f"→ {r['verdict']}"
    )


def _top1(res: dict[str, Any], key: str) -> float | None:
    return (res.get("top1") or {}).get(key)


def interval_verdicts(model_key: str, res: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """Verdict lines for one model from its interleaved-round intervals and paired accuracy."""
    paired = res.get("paired") or {}
    lines = []
    ours, fp32 = "ort-int8-edgeattn", "ort-fp32"
    r = _ratio(res, ours, fp32)
    if r:
        pair = paired.get(PAIR_OF[(ours, fp32)])
        worse = bool(significantly_worse(pair))
        rec = "INT8" if r["verdict"] == "faster" and not worse else "FP32"
        why = (
            "" if rec == "INT8"
            else " (INT8 is significantly less accurate)" if worse
            else " (INT8 is not measurably faster here)"
        )  # fmt: skip
        lines.append(
            f"{model_key}: edgeattn INT8 vs onnxruntime FP32 at batch 1: {ratio_text(r)}; top-1 "
            f"{_pct(_top1(res, ours))} vs {_pct(_top1(res, fp32))} %{paired_text(pair, 'INT8', 'FP32')} "
            f"→ recommended for this CPU: {rec}{why}."
        )
    ahead = []
    for peer in PEERS:
        r = _ratio(res, ours, peer)
        if not r:
            continue
        pair = paired.get(PAIR_OF[(ours, peer)])
        worse = significantly_worse(pair)
        if worse is None:
            worse = (_top1(res, ours) or 0) < (_top1(res, peer) or 0)
        accuracy = "significantly less accurate" if worse else "not less accurate"
        ahead.append(r["verdict"] == "faster" and not worse)
        lines.append(
            f"{model_key}: edgeattn INT8 vs {labels.get(peer, peer)} at batch 1: {ratio_text(r)}; top-1 "
            f"{_pct(_top1(res, ours))} vs {_pct(_top1(res, peer))} %{paired_text(pair, 'edgeattn', 'the peer')} — {accuracy}."
        )
    if ahead:
        lines.append(
            f"{model_key}: edgeattn INT8 measurably faster than every peer at no worse accuracy: "
            f"{'yes' if all(ahead) else f'no ({sum(ahead)} of {len(ahead)} peers)'}."
        )
    pruned = _ratio(res, "ort-fp32-pruned", fp32)
    blocks = res.get("attention_blocks")
    if pruned or blocks:
        parts = [f"whole model (onnxruntime FP32) {ratio_text(pruned)}"] if pruned else []
        if blocks and "speedup" in blocks:
            b = blocks
            parts.append(
                f"attention blocks alone (torch eager, {b['all_heads']['blocks']} blocks, {b['all_heads']['heads']} → "
                f"{b['pruned']['heads']} heads) {b['all_heads']['median_ms']:.2f} → {b['pruned']['median_ms']:.2f} ms, "
                f"{ratio_text(b['speedup'])}"
            )
        lines.append(f"{model_key}: 50 % of heads pruned vs all heads: " + "; ".join(parts) + ".")
    return lines


# ------------------------------------------------------------------------------------------- markdown
def _finetune_epochs(result: dict[str, Any], settings: StandingSettings) -> int:
    own = result["model"].get("prune_finetune_epochs")
    return settings.prune_finetune_epochs if own is None else own


def _speed(r: Any) -> str:
    if r is None:
        return "–"
    return "1.00× (base)" if r.is_baseline else f"{r.speedup:.2f}×" if r.speedup else "–"


def _interval_cell(res: dict[str, Any], key: str | None, is_base: bool) -> str:
    if is_base:
        return "1.00× (base)"
    r = _ratio(res, key, "ort-fp32") if key else None
    return "–" if not r else f"{r['point']:.2f}× ({r['low']:.2f}–{r['high']:.2f})"


def model_rows(res: dict[str, Any], rep: BenchReport, b_lo: int, b_hi: int) -> list[list[str]]:
    """Table rows of one model: batch-1 latency and ratio from the interleaved rounds (when measured),
    batch-`b_hi` throughput, peak RSS from the fresh-process pass."""
    keys = {v: k for k, v in (res.get("labels") or {}).items()}  # label -> variant key
    timing = (res.get("interleaved") or {}).get("timing") or {}
    rows = []
    for label in dict.fromkeys(r.label for r in rep.rows):
        lo, hi = _row(rep, label, b_lo), _row(rep, label, b_hi)
        any_row = lo or hi
        key = keys.get(label)
        med, p90 = (timing.get("median_ms") or {}).get(key), (timing.get("p90_ms") or {}).get(key)
        if med is None and lo is not None:
            med, p90 = lo.median_ms, lo.p90_ms
        ratio = _interval_cell(res, key, key == "ort-fp32") if timing else _speed(lo)
        rows.append([
            rep.title, label, any_row.precision, "–" if med is None else f"{med:.1f}", "–" if p90 is None else f"{p90:.1f}",
            ratio, f"{hi.median_ms:.1f}" if hi else "–", f"{hi.throughput_ips:.1f}" if hi else "–", _speed(hi),
            fmt_count(any_row.macs) if any_row.macs else "–", f"{any_row.top1:.1f}" if any_row.top1 is not None else "–",
            f"{any_row.peak_rss_mb:.0f}" if any_row.peak_rss_mb else "–",
        ])  # fmt: skip
    for u in res["unavailable"]:
        rows.append([rep.title, u["variant"], "–", *["–"] * 8, "skipped: " + u["reason"][:80]])
    return rows


def block_rows(results: list[dict[str, Any]], reports: list[BenchReport]) -> list[list[str]]:
    rows = []
    for res, rep in zip(results, reports, strict=True):
        b = res.get("attention_blocks")
        if not b or "speedup" not in b:
            continue
        s = b["speedup"]
        rows.append([
            rep.title, f"{b['all_heads']['blocks']} ({', '.join(b['all_heads']['kinds'])})",
            f"{b['all_heads']['heads']} → {b['pruned']['heads']}", f"{b['all_heads']['median_ms']:.2f}",
            f"{b['pruned']['median_ms']:.2f}", f"{s['point']:.2f}× ({s['low']:.2f}–{s['high']:.2f})", s["verdict"],
        ])  # fmt: skip
    return rows


def placement_line(result: dict[str, Any]) -> str:
    """How edgeattn's INT8 row was placed: `--placement measured` at the deployment size, its groups."""
    m = result["edgeattn_placement"]
    groups = m.get("groups", [])
    floats = [g["group"] for g in groups if g.get("kept") == "float"]
    size = "x".join(str(d) for d in m.get("input_shape", [])[2:]) or "?"
    return (
        f"- edgeattn INT8, {result['model']['name']}: `edgeattn quantize --placement measured --placement-size "
        f"{result['model']['deploy_size']} --placement-budget {m.get('budget_s', 0):g}` timed "
        f"{sum(1 for g in groups if g.get('speedup') is not None)} of {len(groups)} layer groups at {size} "
        f"({m.get('timer', '')}); kept float: {', '.join(floats) if floats else 'none'}; its own verdict: {m.get('verdict', '')}"
    )


def standing_markdown(results: list[dict[str, Any]], settings: StandingSettings, total_s: float) -> str:
    reports = [BenchReport.from_dict(r["report"]) for r in results]
    b_lo, b_hi = min(settings.batches), max(settings.batches)
    cols = ["model", "artifact", "precision", f"b{b_lo} median ms", f"b{b_lo} p90 ms", f"b{b_lo} vs ORT FP32 (95 % interval)",
            f"b{b_hi} median ms", f"b{b_hi} img/s", f"b{b_hi} vs ORT FP32", "MACs", "top-1 %", "peak RSS MB"]  # fmt: skip
    rows = [
        row for res, rep in zip(results, reports, strict=True) for row in model_rows(res, rep, b_lo, b_hi)
    ]
    env = reports[0].env if reports else {}
    details: dict[
        str, dict[str, Any]
    ] = {}  # label -> its docs and {settings: models} (settings differ per model)
    for res in results:
        for label, d in (res.get("peer_details") or {}).items():
            entry = details.setdefault(label, {"docs": d.get("docs", ""), "settings": {}})
            entry["settings"].setdefault(d.get("quantizer", ""), []).append(res["model"]["name"])
    lines = [
        "<!-- written by `make bench` (python -m edgeattn.bench.standing); do not edit by hand -->",
        f"Standing benchmark, {env.get('time', '')}: {settings.threads} threads. Batch {b_lo}: every variant of a model timed in "
        f"one process in {settings.rounds} interleaved rounds (each round runs every variant for about {settings.turn_seconds:g} s, "
        f"in a shuffled order), median latency over all rounds; the ratio is the geometric mean of the per-round ratios with a "
        f"95 % bootstrap interval over rounds. Batch {b_hi} (FP32 and edgeattn's artifacts) and peak RSS (every artifact): each artifact in a fresh process, one after another "
        f"(median of ≥{settings.min_iters} runs in {settings.seconds:g} s after {settings.warmup} warm-up runs; no interval). "
        f"Ratios are against onnxruntime FP32 of the same model (above 1 = faster).",
        "",
        md_table(cols, rows),
        "",
    ]
    blocks = block_rows(results, reports)
    if blocks:
        lines += [
            "Attention blocks alone (each model's attention modules, found through its head adapters, run on their own "
            "inputs captured from one val image at the deployment resolution; torch eager, batch 1, interleaved rounds):",
            "",
            md_table(["model", "attention blocks", "heads", "all heads ms", "50% pruned ms", "speed-up (95 % interval)", "verdict"], blocks),
            "",
        ]  # fmt: skip
    lines += [
        f"- Machine: {env_line(env)}." if env else "",
        "- Accuracy: no pretrained weights can be downloaded here, so each model was trained briefly on builtin:digits at a "
        "small resolution ("
        + ", ".join(
            f"{r['model']['name']} {r['model']['eval_size']} px, {r['model']['epochs']} epochs at batch {r['model']['batch_size']}"
            for r in results
        )
        + "; attn_vgg16 with batch norm) and top-1 is measured "
        "there on the val split; latency is measured at the deployment resolution with the same weights (EfficientFormer's "
        "attention-bias tables resized bicubically); edgeattn's INT8 and pruned models are made once and moved to the deployment "
        f"resolution with their scales. Every INT8 tool calibrates on the same {settings.calib_eval} calib-split images; the peer "
        f"tools' latency copies (their graphs are fixed per resolution) are calibrated on {settings.calib_deploy} images at the deployment resolution.",
        "- Peer, defaults: `onnxruntime.quantization.quantize_static(fp32.onnx, out, reader)` with every option at its default "
        "(QDQ, QInt8 activations and weights, per-tensor, MinMax), on the same FP32 ONNX edgeattn exports.",
    ]
    for label, d in details.items():
        settings_text = "; ".join(
            f"{q} ({', '.join(models)})" if len(d["settings"]) > 1 else q
            for q, models in d["settings"].items()
        )
        lines.append(f"- Peer, {label}: {settings_text}. As documented in: {d['docs']}.")
    lines += [placement_line(r) for r in results if r.get("edgeattn_placement")]
    lines += [
        "- Pruned rows: 50 % of all attention heads removed structurally by taylor importance, then "
        + ", ".join(f"{r['model']['name']} {_finetune_epochs(r, settings)} epoch(s)" for r in results)
        + " of distilled recovery fine-tune.",
        "- Verdicts: a variant is called faster or slower than another only when the 95 % interval of their speed ratio excludes "
        "1.0 (else: no measurable difference). Accuracy is compared image by image on the same val images (one image = 0.11 pp): a "
        f"lower top-1 counts as less accurate only when McNemar's exact test rejects chance at p < {SIGNIFICANCE}. INT8 is "
        "recommended for a model only when it is measurably faster than FP32 and not significantly less accurate.",
    ]
    for res, rep in zip(results, reports, strict=True):
        key = rep.title.split(" ")[0]
        found = interval_verdicts(key, res, res.get("labels") or {}) if res.get("interleaved") else []
        lines += [f"- {line}" for line in found or verdict(key, rep, b_lo, res.get("paired"))]
    for rep in reports:
        lines += [f"- {n}" for n in rep.notes if "numbers are pessimistic" in n][:1]
    lines.append(f"- Whole run: {total_s / 60:.1f} min.")
    return "\n".join(line for line in lines if line is not None) + "\n"
