"""The project's standing benchmark (`make bench`): `python -m edgeattn.bench.standing --out exported/bench`.

For mobilevit_xxs (256²), efficientformer_l1 (224²) and attn_vgg16 (224², linear attention) it
compares, in one run, on 2 threads, at batch 1 and 8: torch eager FP32, onnxruntime FP32, onnxruntime
INT8 from edgeattn, onnxruntime INT8 from the plain peer tool (`quantize_static` with its defaults on
the same FP32 ONNX and the same calibration images) and the model with 50 % of its attention heads
pruned. Ratios are against onnxruntime FP32 of the same model.

Accuracy needs trained weights and none can be downloaded here, so each model is trained briefly on
builtin:digits at a small resolution (cached under OUT/models/ and reused). Top-1 is measured at that
resolution; latency at the deployment resolution with the same weights (see variants.py). Writes
OUT/<model>.json, OUT/standing.json, OUT/bench.png and OUT/README-table.md (quoted by the README).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeattn.bench.report import BenchReport, env_line
from edgeattn.errors import EdgeAttnError, InputError
from edgeattn.reporting import fmt_count, md_table

DATA = "builtin:digits"
SIGNIFICANCE = 0.05  # a paired top-1 difference counts only when McNemar's exact test rejects at this level
# Paired comparisons written to OUT/<model>.json and used by the verdicts: (name, artifact, reference)
PAIRS = (("edgeattn_int8_vs_peer_int8", "ort-int8-edgeattn", "ort-int8-peer"),
         ("edgeattn_int8_vs_fp32", "ort-int8-edgeattn", "ort-fp32"))  # fmt: skip


@dataclass(frozen=True)
class StandingModel:
    name: str
    deploy_size: int  # latency is measured here
    eval_size: int  # trained and evaluated here
    options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 4
    batch_size: int = 64
    lr: float = 2e-3
    prune_finetune_epochs: int | None = None  # None: the settings' value
    variants: tuple[str, ...] = (
        "torch-fp32",
        "ort-fp32",
        "ort-int8-edgeattn",
        "ort-int8-peer",
        "ort-fp32-pruned",
    )

    @property
    def key(self) -> str:
        return self.name


# attn_vgg16 trains with batch norm (VGG16 without it does not learn in a few epochs from scratch);
# onnxruntime folds BN into the convolutions, so the deployed graph is the plain VGG16 + attention.
STANDING_MODELS = (
    StandingModel("mobilevit_xxs", 256, 64, epochs=4),
    StandingModel("efficientformer_l1", 224, 64, epochs=4),
    # No recovery fine-tune for VGG16 (an epoch of it costs ~3 min here): its pruned row is about speed.
    # Batch 16 at lr 1e-3: 2 epochs at batch 64 are ~100 steps, too few for VGG16 from scratch (14 %
    # top-1, chance is 10 %); batch 16 reaches ~80 % in the same time. (mobilevit_xxs and
    # efficientformer_l1 did worse with it: 31 % and 37 % against 50 % and 38 %.)
    StandingModel(
        "attn_vgg16",
        224,
        32,
        {"attention": "linear", "batch_norm": True},
        epochs=2,
        batch_size=16,
        lr=1e-3,
        prune_finetune_epochs=0,
    ),
)


@dataclass
class StandingSettings:
    batches: tuple[int, ...] = (1, 8)
    threads: int = 2
    warmup: int = 3
    seconds: float = 3.0  # time budget per artifact and batch size
    min_iters: int = 5
    calib_eval: int = 300
    calib_deploy: int = 32
    prune_finetune_epochs: int = 1
    seed: int = 0


def trained_checkpoint(model: StandingModel, models_dir: Path, data: str = DATA) -> Path:
    """Train `model` briefly at its eval resolution, once; later runs reuse the cached file."""
    from edgeattn.train import train_checkpoint

    ident = hashlib.sha256(
        json.dumps(
            [model.name, model.eval_size, model.options, model.epochs, model.batch_size, model.lr, data],
            sort_keys=True,
        ).encode()
    ).hexdigest()[:8]
    path = models_dir / f"{model.name}-{model.eval_size}px-e{model.epochs}-{ident}.pt"
    if not path.exists():
        train_checkpoint(
            model=model.name,
            data=data,
            out=path,
            input_size=model.eval_size,
            options=dict(model.options),
            epochs=model.epochs,
            batch_size=model.batch_size,
            lr=model.lr,
        )
    return path


def accuracy_note(model: StandingModel) -> str:
    return f"top-1 at {model.eval_size}px on {DATA} val; latency at {model.deploy_size}px, same weights"


def run_model(model: StandingModel, out: Path, settings: StandingSettings, log: Any) -> dict[str, Any]:
    """Build every variant of one model, measure accuracy (eval copies) and latency (deploy copies)."""
    from edgeattn.bench import bench_artifacts
    from edgeattn.bench.variants import VARIANTS, ModelPlan, VariantUnavailable, at_resolution
    from edgeattn.evaluation.artifact import evaluate_artifact

    t0 = time.perf_counter()
    eval_ckpt = trained_checkpoint(model, out / "models")
    work = out / "artifacts" / model.key
    deploy_ckpt = at_resolution(eval_ckpt, model.deploy_size, work / "deploy" / "fp32.pt")
    plan = ModelPlan(
        name=model.name, data=DATA, eval_size=model.eval_size, deploy_size=model.deploy_size, eval_ckpt=eval_ckpt,
        deploy_ckpt=deploy_ckpt, work=work, calib_eval=settings.calib_eval, calib_deploy=settings.calib_deploy,
        max_batch=max(settings.batches), prune_finetune_epochs=settings.prune_finetune_epochs if model.prune_finetune_epochs is None else model.prune_finetune_epochs, seed=settings.seed,
    )  # fmt: skip
    deploy: dict[str, Path] = {}
    labels: dict[Path, str] = {}
    extras: dict[Path, dict[str, Any]] = {}
    unavailable: list[dict[str, str]] = []
    build_s: dict[str, float] = {}
    hits: dict[str, Any] = {}
    for key in model.variants:
        v = VARIANTS.get(key)
        start = time.perf_counter()
        log(f"[{model.key}] building {v.label}")
        try:
            eval_art, deploy_art = v.build(plan)
        except VariantUnavailable as exc:
            unavailable.append({"variant": v.label, "reason": str(exc)})
            continue
        except Exception as exc:  # noqa: BLE001  a stage failed: the table says so, the run exits 1, the rest still runs
            message = (
                exc.one_line()
                if isinstance(exc, EdgeAttnError)
                else f"{type(exc).__name__}: {str(exc)[:300]}"
            )
            log(f"[{model.key}] {v.label} FAILED: {message}")
            unavailable.append(
                {
                    "variant": v.label,
                    "reason": f"build failed: {message}",
                    "failed": "yes",
                    "traceback": traceback.format_exc(),
                }
            )
            continue
        acc = evaluate_artifact(eval_art, DATA, "val", threads=settings.threads, with_hits=True)
        hits[key] = acc.pop("hits")
        build_s[v.label] = round(time.perf_counter() - start, 1)
        deploy[key] = deploy_art
        labels[deploy_art] = v.label
        extras[deploy_art] = {"top1": acc["top1"], "accuracy_note": accuracy_note(model)}
    log(f"[{model.key}] measuring {len(deploy)} artifacts at {model.deploy_size}px")
    baseline = deploy.get("ort-fp32")
    report = bench_artifacts(
        list(deploy.values()), batches=list(settings.batches), threads=settings.threads, warmup=settings.warmup,
        iters=None, seconds=settings.seconds, min_iters=settings.min_iters, baseline=baseline, labels=labels,
        extras=extras, title=f"{model.key} ({model.deploy_size}²)", notes=[accuracy_note(model)],
    )  # fmt: skip
    for u in unavailable:
        report.notes.append(f"{u['variant']}: {u['reason']}")
    return {
        "model": asdict(model),
        "report": report.to_dict(),
        "paired": paired_comparisons(hits),
        "unavailable": unavailable,
        "build_seconds": build_s,
        "seconds": round(time.perf_counter() - t0, 1),
    }


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


def _significantly_worse(pair: dict[str, Any] | None) -> bool | None:
    """True/False when the paired test decides; None without paired data."""
    if not pair:
        return None
    worse = pair["ref_only_correct"] > pair["art_only_correct"]
    return bool(worse and pair["mcnemar_p"] < SIGNIFICANCE)


def _paired_text(pair: dict[str, Any] | None, art: str, ref: str) -> str:
    if not pair:
        return ""
    return (
        f" (paired on {pair['n']} images: {pair['art_only_correct']} right only with {art}, {pair['ref_only_correct']} only with {ref}; "
        f"McNemar p = {pair['mcnemar_p']:.2f}, 95 % interval of the drop {pair['low']:+.1f} … {pair['high']:+.1f} pp)"
    )


# ------------------------------------------------------------------------------------------- rendering
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
        worse = _significantly_worse(pair)
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
            f"{_paired_text(pair, 'edgeattn', 'the peer')} — "
            f"{'at least as fast' if fast else 'SLOWER'} and {accuracy}"
            f"{'' if fast and not worse else ' — NOT at least as fast and as accurate'}."
        )
    return lines


def _finetune_epochs(result: dict[str, Any], settings: StandingSettings) -> int:
    own = result["model"].get("prune_finetune_epochs")
    return settings.prune_finetune_epochs if own is None else own


def standing_markdown(results: list[dict[str, Any]], settings: StandingSettings, total_s: float) -> str:
    reports = [BenchReport.from_dict(r["report"]) for r in results]
    b_lo, b_hi = min(settings.batches), max(settings.batches)
    cols = ["model", "artifact", "precision", f"b{b_lo} median ms", f"b{b_lo} p90 ms", f"b{b_lo} vs ORT FP32",
            f"b{b_hi} median ms", f"b{b_hi} img/s", f"b{b_hi} vs ORT FP32", "MACs", "top-1 %", "peak RSS MB"]  # fmt: skip
    rows = []
    for res, rep in zip(results, reports, strict=True):
        for label in dict.fromkeys(r.label for r in rep.rows):
            lo, hi = _row(rep, label, b_lo), _row(rep, label, b_hi)
            any_row = lo or hi

            def speed(r) -> str:  # noqa: ANN001
                return (
                    "–"
                    if r is None
                    else ("1.00× (base)" if r.is_baseline else f"{r.speedup:.2f}×" if r.speedup else "–")
                )

            rows.append([
                rep.title, label, any_row.precision,
                f"{lo.median_ms:.1f}" if lo else "–", f"{lo.p90_ms:.1f}" if lo else "–", speed(lo),
                f"{hi.median_ms:.1f}" if hi else "–", f"{hi.throughput_ips:.1f}" if hi else "–", speed(hi),
                fmt_count(any_row.macs) if any_row.macs else "–", f"{any_row.top1:.1f}" if any_row.top1 is not None else "–",
                f"{any_row.peak_rss_mb:.0f}" if any_row.peak_rss_mb else "–",
            ])  # fmt: skip
        for u in res["unavailable"]:
            rows.append([rep.title, u["variant"], "–", *["–"] * 8, "skipped: " + u["reason"][:80]])
    env = reports[0].env if reports else {}
    lines = [
        "<!-- written by `make bench` (python -m edgeattn.bench.standing); do not edit by hand -->",
        f"Standing benchmark, {env.get('time', '')}: {settings.threads} threads, median of ≥{settings.min_iters} runs in a "
        f"{settings.seconds:g} s budget per cell after {settings.warmup} warm-up runs; each artifact in a fresh process. "
        f"Speed ratios are against onnxruntime FP32 of the same model, same run (above 1 = faster).",
        "",
        md_table(cols, rows),
        "",
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
        f"resolution with their scales. Both INT8 tools calibrate on the same {settings.calib_eval} calib-split images; the peer "
        f"tool's latency copy (its graph is fixed per resolution) is calibrated on {settings.calib_deploy} images at the deployment resolution.",
        "- Peer tool: `onnxruntime.quantization.quantize_static(fp32.onnx, out, reader)` with every option at its default "
        "(QDQ, QInt8 activations and weights, per-tensor, MinMax), on the same FP32 ONNX edgeattn exports.",
        "- Pruned rows: 50 % of all attention heads removed structurally by taylor importance, then "
        + ", ".join(f"{r['model']['name']} {_finetune_epochs(r, settings)} epoch(s)" for r in results)
        + " of distilled recovery fine-tune.",
        "- Accuracy in the verdicts is compared image by image on the same val images (one image = 0.11 pp): a lower top-1 "
        f"counts as less accurate only when McNemar's exact test on the images one variant gets right and the other wrong "
        f"rejects chance at p < {SIGNIFICANCE}.",
    ]
    for res, rep in zip(results, reports, strict=True):
        lines += [f"- {line}" for line in verdict(rep.title.split(" ")[0], rep, b_lo, res.get("paired"))]
    for rep in reports:
        lines += [f"- {n}" for n in rep.notes if "numbers are pessimistic" in n][:1]
    lines.append(f"- Whole run: {total_s / 60:.1f} min.")
    return "\n".join(line for line in lines if line is not None) + "\n"


# ---------------------------------------------------------------------------------------------- driver
def run_standing(out: Path, models: tuple[StandingModel, ...] = STANDING_MODELS, settings: StandingSettings | None = None,
                 log: Any = print) -> dict[str, Any]:  # fmt: skip
    """Run the standing benchmark and write OUT/<model>.json, standing.json, bench.png, README-table.md."""
    from edgeattn.bench import write_bench_plot
    from edgeattn.bench.report import render_rich
    from edgeattn.fileio import check_writable, write_json, write_text

    settings = settings or StandingSettings()
    out = Path(out)
    check_writable(out / "standing.json")
    start = time.perf_counter()
    results = []
    for model in models:
        res = run_model(model, out, settings, log)
        write_json(out / f"{model.key}.json", res)
        render_rich(BenchReport.from_dict(res["report"]))
        results.append(res)
    total = time.perf_counter() - start
    summary = {
        "format": "edgeattn.bench.standing",
        "settings": asdict(settings),
        "seconds": round(total, 1),
        "models": results,
    }
    write_json(out / "standing.json", summary)
    reports = [BenchReport.from_dict(r["report"]) for r in results]
    write_bench_plot(reports, out / "bench.png")
    write_text(out / "README-table.md", standing_markdown(results, settings, total))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edgeattn.bench.standing", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=Path("exported/bench"))
    parser.add_argument(
        "--models", default=",".join(m.key for m in STANDING_MODELS), help="comma-separated subset"
    )
    parser.add_argument(
        "--seconds", type=float, default=StandingSettings.seconds, help="time budget per artifact and batch"
    )
    parser.add_argument("--threads", type=int, default=StandingSettings.threads)
    args = parser.parse_args(argv)
    known = {m.key: m for m in STANDING_MODELS}
    try:
        wanted = [s.strip() for s in args.models.split(",") if s.strip()]
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise InputError(
                f"unknown standing-benchmark model {', '.join(unknown)}", f"choose from: {', '.join(known)}"
            )
        summary = run_standing(
            args.out,
            tuple(known[w] for w in wanted),
            StandingSettings(seconds=args.seconds, threads=args.threads),
        )
    except EdgeAttnError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    print((args.out / "README-table.md").read_text())
    failed = [u for m in summary["models"] for u in m["unavailable"] if u.get("failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
