"""The project's standing benchmark (`make bench`): `python -m edgeattn.bench.standing --out exported/bench`.

For mobilevit_xxs (256²), efficientformer_l1 (224²) and attn_vgg16 (224², linear attention) it
compares, in one run, on 2 threads: torch eager FP32, onnxruntime FP32, onnxruntime INT8 from
edgeattn, three peer INT8 tools on the same FP32 ONNX and the same calibration images (onnxruntime
`quantize_static` as its docs advise for this CPU, NNCF's own ONNX PTQ, `quantize_static` with its
defaults; see peers.py) and the model with 50 % of its attention heads pruned. Batch 1 is timed in
interleaved rounds in one process (interleave.py), so every ratio has a 95 % interval (stats.py);
batch 8 (FP32 and edgeattn's artifacts) and peak RSS (all) come from a short pass with each
artifact in a fresh process. The attention
blocks alone are timed before and after pruning (blocks.py).

Accuracy needs trained weights and none can be downloaded here, so each model is trained briefly on
builtin:digits at a small resolution (cached under OUT/models/ and reused). Top-1 is measured at that
resolution; latency at the deployment resolution with the same weights (see variants.py). Writes
OUT/<model>.json, OUT/standing.json, OUT/bench.png and OUT/README-table.md (quoted by the README;
rendered by standing_report.py). `--models attn_vgg16` runs a subset.
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

from edgeattn.bench.fresh import fresh_process_pass
from edgeattn.bench.report import BenchReport
from edgeattn.bench.standing_report import (  # noqa: F401  (verdict, PAIRS, SIGNIFICANCE: this module's API too)
    PAIRS,
    PEERS,
    SIGNIFICANCE,
    paired_comparisons,
    ratio_name,
    standing_markdown,
    verdict,
)
from edgeattn.errors import EdgeAttnError, InputError

DATA = "builtin:digits"


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
    transformer: bool = False  # NNCF's peer gets model_type=TRANSFORMER, as its docs advise for transformers
    variants: tuple[str, ...] = (
        "torch-fp32",
        "ort-fp32",
        "ort-int8-edgeattn",
        "ort-int8-peer-docs",
        "ort-int8-nncf",
        "ort-int8-peer",
        "ort-fp32-pruned",
    )

    @property
    def key(self) -> str:
        return self.name


# attn_vgg16 trains with batch norm (VGG16 without it does not learn in a few epochs from scratch);
# onnxruntime folds BN into the convolutions, so the deployed graph is the plain VGG16 + attention.
STANDING_MODELS = (
    StandingModel("mobilevit_xxs", 256, 64, epochs=4, transformer=True),
    # No recovery fine-tune for efficientformer_l1 either (its epoch cost 43 s of a 20-minute budget): its
    # one attention block loses 4 of 8 heads, and its pruned row is about speed.
    StandingModel("efficientformer_l1", 224, 64, epochs=4, transformer=True, prune_finetune_epochs=0),
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
    warmup: int = 1
    seconds: float = 0.5  # fresh-process pass (batch 8, peak RSS): time budget per artifact and batch size
    min_iters: int = 2
    rounds: int = 12  # interleaved rounds at the smallest batch size (the ratios' intervals come from these)
    turn_seconds: float = 0.25  # how long each variant runs per round
    block_rounds: int = 8  # the same for the attention blocks alone, before/after pruning
    block_turn_seconds: float = 0.1
    calib_eval: int = 300
    calib_deploy: int = 16
    placement_budget: float = 30.0  # edgeattn's --placement measured, per model, at the deployment size
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
    from edgeattn.bench.variants import VARIANTS, ModelPlan, VariantUnavailable, at_resolution
    from edgeattn.evaluation.artifact import evaluate_artifact

    t0 = time.perf_counter()
    eval_ckpt = trained_checkpoint(model, out / "models")
    phases = {"train_or_cached": time.perf_counter() - t0}
    work = out / "artifacts" / model.key
    deploy_ckpt = at_resolution(eval_ckpt, model.deploy_size, work / "deploy" / "fp32.pt")
    plan = ModelPlan(
        name=model.name, data=DATA, eval_size=model.eval_size, deploy_size=model.deploy_size, eval_ckpt=eval_ckpt,
        deploy_ckpt=deploy_ckpt, work=work, calib_eval=settings.calib_eval, calib_deploy=settings.calib_deploy,
        max_batch=max(settings.batches), placement_budget=settings.placement_budget, prune_finetune_epochs=settings.prune_finetune_epochs if model.prune_finetune_epochs is None else model.prune_finetune_epochs, seed=settings.seed,
        transformer=model.transformer,
    )  # fmt: skip
    deploy: dict[str, Path] = {}
    labels: dict[Path, str] = {}
    extras: dict[Path, dict[str, Any]] = {}
    unavailable: list[dict[str, str]] = []
    build_s: dict[str, float] = {}
    hits: dict[str, Any] = {}
    top1: dict[str, float] = {}
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
        hits[key] = acc.hits
        build_s[v.label] = round(time.perf_counter() - start, 1)
        deploy[key] = deploy_art
        labels[deploy_art] = v.label
        top1[key] = acc.top1
        extras[deploy_art] = {"top1": acc.top1, "accuracy_note": accuracy_note(model)}
    phases["build_and_accuracy"] = time.perf_counter() - t0 - sum(phases.values())
    log(f"[{model.key}] measuring {len(deploy)} artifacts at {model.deploy_size}px")
    baseline = deploy.get("ort-fp32")
    report = fresh_process_pass(
        deploy, settings, baseline=baseline, labels=labels, extras=extras,
        title=f"{model.key} ({model.deploy_size}²)", notes=[accuracy_note(model)],
    )  # fmt: skip
    for u in unavailable:
        report.notes.append(f"{u['variant']}: {u['reason']}")
    log(
        f"[{model.key}] timing {len(deploy)} artifacts in {settings.rounds} interleaved rounds at batch {min(settings.batches)}"
    )
    phases["fresh_processes"] = time.perf_counter() - t0 - sum(phases.values())
    interleaved = interleaved_ratios(deploy, settings, report)
    phases["interleaved_rounds"] = time.perf_counter() - t0 - sum(phases.values())
    blocks = None
    if plan.built.get("pruned_deploy_ckpt"):
        log(f"[{model.key}] timing the attention blocks alone, before/after pruning")
        blocks = block_latency(plan, settings)
    phases["attention_blocks"] = time.perf_counter() - t0 - sum(phases.values())
    return {
        "model": asdict(model),
        "report": report.to_dict(),
        "labels": {k: VARIANTS.get(k).label for k in deploy},
        "top1": top1,
        "paired": paired_comparisons(hits),
        "interleaved": interleaved,
        "attention_blocks": blocks,
        "peer_details": peer_details(deploy),
        "edgeattn_placement": plan.built.get("placement"),
        "unavailable": unavailable,
        "build_seconds": build_s,
        "seconds": round(time.perf_counter() - t0, 1),
        "phase_seconds": {k: round(v, 1) for k, v in phases.items()},
    }


def interleaved_ratios(
    deploy: dict[str, Path], settings: StandingSettings, report: BenchReport
) -> dict[str, Any] | None:
    """Every variant timed in interleaved rounds at the smallest batch; ratios vs onnxruntime FP32 and
    edgeattn INT8 vs each peer, each with its bootstrap interval. Adds the batch rows to `report`
    (latency from the rounds, everything else from the artifact's fresh-process row)."""
    from edgeattn.bench.interleave import time_artifacts_interleaved
    from edgeattn.bench.stats import speed_ratio_interval

    if len(deploy) < 2:
        return None
    timing = time_artifacts_interleaved(
        deploy, threads=settings.threads, batch=min(settings.batches), seed=settings.seed, rounds=settings.rounds,
        turn_seconds=settings.turn_seconds, warmup=settings.warmup,
    )  # fmt: skip
    pairs = [(k, "ort-fp32") for k in deploy if k != "ort-fp32"]
    pairs += [("ort-int8-edgeattn", p) for p in PEERS]
    ratios = {}
    for art, ref in pairs:
        if art in deploy and ref in deploy:
            interval = speed_ratio_interval(
                timing.round_median_ms[ref], timing.round_median_ms[art], seed=settings.seed
            )
            ratios[ratio_name(art, ref)] = {"variant": art, "reference": ref, **interval.to_dict()}
    add_rows(report, deploy, timing, ratios, min(settings.batches))
    return {"batch": min(settings.batches), "timing": timing.to_dict(), "ratios": ratios}


def add_rows(
    report: BenchReport, deploy: dict[str, Path], timing: Any, ratios: dict[str, Any], batch: int
) -> None:
    """One row per variant at `batch` from its interleaved samples; `speedup` is the ratio's point estimate."""
    from dataclasses import replace

    from edgeattn.bench.harness import latency_stats

    by_artifact = {r.artifact: r for r in report.rows}
    new = []
    for key, path in deploy.items():
        base = next((r for a, r in by_artifact.items() if Path(a).resolve() == Path(path).resolve()), None)
        if base is None:
            continue
        stats = {k: v for k, v in latency_stats(timing.samples_ms[key], batch).items() if k != "total_s"}
        ratio = ratios.get(ratio_name(key, "ort-fp32"))
        new.append(replace(
            base, batch=batch, **stats, first_run_ms=timing.first_run_ms[key], timer="wall clock (perf_counter), interleaved rounds",
            speedup=ratio["point"] if ratio else (1.0 if key == "ort-fp32" else None),
            latency_ratio=1 / ratio["point"] if ratio else (1.0 if key == "ort-fp32" else None),
        ))  # fmt: skip
    # (a fresh-process row at this batch gave `base` its memory figures; the interleaved row replaces it)
    report.rows = sorted(new + [r for r in report.rows if r.batch != batch], key=lambda r: r.batch)


def block_latency(plan: Any, settings: StandingSettings) -> dict[str, Any] | None:
    """The attention blocks alone, all heads vs pruned, on one val image at the deployment resolution."""
    import torch

    from edgeattn.bench.blocks import attention_block_latency
    from edgeattn.data import load_split

    image = load_split(plan.data, "val", plan.deploy_size).subset(1, seed=plan.seed).images
    before = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return attention_block_latency(
            plan.deploy_ckpt, plan.built["pruned_deploy_ckpt"], image, rounds=settings.block_rounds,
            turn_seconds=settings.block_turn_seconds, seed=settings.seed,
        )  # fmt: skip
    finally:
        torch.set_num_threads(before)


def peer_details(deploy: dict[str, Path]) -> dict[str, dict[str, str]]:
    """How each best-configured peer was set up (its manifest's details), by row label."""
    from edgeattn.bench.variants import VARIANTS
    from edgeattn.manifest import read_manifest

    out = {}
    for key in PEERS:
        if key in deploy and key != "ort-int8-peer":
            d = read_manifest(deploy[key]).details
            out[VARIANTS.get(key).label] = {
                "quantizer": str(d.get("quantizer", "")),
                "docs": str(d.get("docs", "")),
            }
    return out


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
    parser.add_argument(
        "--rounds", type=int, default=StandingSettings.rounds, help="interleaved rounds at batch 1 (≥ 2)"
    )
    parser.add_argument(
        "--placement-budget",
        type=float,
        default=StandingSettings.placement_budget,
        help="seconds edgeattn's measured placement may time layer groups, per model",
    )
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
            StandingSettings(
                seconds=args.seconds,
                threads=args.threads,
                rounds=max(2, args.rounds),
                placement_budget=args.placement_budget,
            ),
        )
    except EdgeAttnError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    print((args.out / "README-table.md").read_text())
    failed = [u for m in summary["models"] for u in m["unavailable"] if u.get("failed")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
