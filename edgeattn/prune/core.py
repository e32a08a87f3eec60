"""`prune_checkpoint`: score heads, remove them structurally, optionally fine-tune, save and report.

Everything the user can get wrong (target, scope, importance, data, output paths, a model without
heads) is checked before any work, and nothing is written unless the whole run succeeds. The pruned
model is rebuilt from its new `heads_kept` and compared with the in-memory one before it is saved,
so a written checkpoint always reloads into exactly its shape.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from edgeattn.checkpoint import ModelHandle, load_checkpoint, load_state_into, save_checkpoint
from edgeattn.data import DataConfig, FileSet, ImageSet, load_split
from edgeattn.errors import InputError
from edgeattn.evaluation import evaluate, predict_logits
from edgeattn.fileio import check_writable
from edgeattn.models import ModelConfig, build_model
from edgeattn.models.heads import attention_blocks, unadapted_attention
from edgeattn.models.profile import count_macs, count_params
from edgeattn.prune.config import PruneConfig
from edgeattn.prune.importance import IMPORTANCE, NORMALIZATIONS, ScoreData, check_method_fits, score_heads
from edgeattn.prune.report import write_reports
from edgeattn.prune.result import (
    BeforeAfter,
    BlockRow,
    FinetuneInfo,
    HeadCounts,
    HeadlessBlock,
    PruneReport,
    PruneTop1,
)
from edgeattn.prune.selection import SCOPES, Candidate, check_target
from edgeattn.prune.structural import (
    clone_model,
    current_kept,
    head_mac_costs,
    keep_local,
    original_head_counts,
    prunable_blocks,
)
from edgeattn.train import TrainConfig, fit

MIN_SCORE_IMAGES = 16  # fewer calibration images than this cannot rank heads reliably


@dataclasses.dataclass
class PruneData:
    score: ScoreData | None
    val: ImageSet | FileSet
    train: ImageSet | FileSet | None


def _check_outputs(out: Path, report_dir: Path | None) -> None:
    check_writable(out)
    if report_dir is not None:
        report_dir = Path(report_dir)
        if report_dir.exists() and not report_dir.is_dir():
            raise InputError(f"--report-dir {report_dir} is a file", "give a folder for the report")
        check_writable(report_dir / "prune_report.json")


def _no_heads_error(handle: ModelHandle, path: str) -> InputError:
    unknown = unadapted_attention(handle.module)
    if unknown:
        found = "; ".join(
            f"{cls} × {len(paths)} ({', '.join(paths[:3])}{', …' if len(paths) > 3 else ''})"
            for cls, paths in unknown.items()
        )
        return InputError(
            f"{path} ({handle.config.name}) has attention modules no head adapter knows: {found}",
            "it can still be quantized, exported and validated unpruned; to prune it, register a "
            "HeadAdapter for that class (README: Adding a head adapter)",
        )
    blocks = attention_blocks(handle.module)
    kinds = sorted({b.kind for b in blocks})
    if not blocks:
        what = "has no attention blocks"
    elif all(not b.adapter.has_heads for b in blocks):
        what = f"has only attention blocks without heads ({', '.join(kinds)} × {len(blocks)})"
    else:
        what = "has no attention heads left (all were removed before)"
    return InputError(
        f"{path} ({handle.config.name}) {what}: there are no heads to prune",
        "prune a model with multi-head attention (mobilevit_*, efficientformer_*, attn_vgg* with attention=linear or softmax)",
    )


def _load_data(
    data: str, handle: ModelHandle, needs_scores: bool, pc: PruneConfig, seed: int, options: DataConfig | None
) -> PruneData:
    size = handle.config.input_size
    val = load_split(data, "val", size, options).subset(pc.val_size, seed)
    if val.num_classes != handle.config.num_classes:
        raise InputError(
            f"the model predicts {handle.config.num_classes} classes but {data} has {val.num_classes}",
            "prune with the data set the model was trained on",
        )
    score = None
    if needs_scores:
        calib = load_split(data, "calib", size, options).subset(pc.calib_size, seed)
        if len(calib) < MIN_SCORE_IMAGES:
            raise InputError(
                f"the calibration split of {data} has {len(calib)} images; scoring heads needs at least {MIN_SCORE_IMAGES}",
                "give a larger data set (or --importance l1 / random, which need no data)",
            )
        score = ScoreData(calib.to_model_input(handle.input_spec), calib.labels, pc.score_batch_size)
    train = load_split(data, "train", size, options) if pc.finetune_epochs > 0 else None
    return PruneData(score, val, train)


def prune_handle(
    handle: ModelHandle,
    data: str,
    config: PruneConfig,
    *,
    seed: int = 0,
    source: str = "<model>",
    data_options: DataConfig | None = None,
) -> tuple[ModelHandle, PruneReport]:
    """Prune a loaded model; returns the pruned handle (config.heads_kept set) and the report.
    `data_options` say how images are read (workers, class map, bad files)."""
    start = time.perf_counter()
    pc = config
    target = check_target(pc)
    method = IMPORTANCE.get(pc.importance)
    NORMALIZATIONS.get(pc.normalize)
    scope_impl = SCOPES.get(pc.scope)
    if handle.kind != "fp32":
        raise InputError(
            f"{source} is a {handle.kind} checkpoint", "prune the FP32 model, then quantize the pruned one"
        )
    teacher = handle.module.eval()
    blocks = prunable_blocks(teacher)
    if not blocks:
        raise _no_heads_error(handle, source)
    check_method_fits(pc.importance, blocks)
    size = handle.config.input_size
    macs_before = count_macs(teacher, size)
    costs = head_mac_costs(teacher, size, macs_before) if target.macs is not None else {}
    plan = scope_impl.plan(
        [Candidate(b.path, b.num_heads, torch.zeros(b.num_heads), costs.get(b.path, 0.0)) for b in blocks],
        target,
        pc.min_heads_per_block,
        macs_before,
    )
    pdata = _load_data(data, handle, method.needs_data, pc, seed, data_options)

    original = original_head_counts(handle.config, teacher)
    kept = current_kept(handle.config, original)  # original indices, updated as heads go
    heads_before = {p: len(k) for p, k in kept.items()}
    first_scores: dict[str, list[float | None]] = {}
    steps_log = []
    student = clone_model(teacher)
    removed_count: dict[str, int] = {}
    macs_now = macs_before
    for step in range(1, pc.iterative_steps + 1):
        live = prunable_blocks(student)
        scores = score_heads(pc.importance, student, live, pdata.score, seed + step - 1, pc.normalize)
        cands = [Candidate(b.path, b.num_heads, scores[b.path], costs.get(b.path, 0.0)) for b in live]
        drop = scope_impl.choose(
            cands, plan, pc.min_heads_per_block, step, pc.iterative_steps, removed_count, macs_now
        )
        keep_now = {c.path: [h for h in range(c.heads) if h not in set(drop.get(c.path, []))] for c in cands}
        step_scores = {}
        for c in cands:
            by_orig: list[float | None] = [None] * original[c.path]
            for local, orig in enumerate(kept[c.path]):
                by_orig[orig] = float(c.scores[local])
            step_scores[c.path] = by_orig
            first_scores.setdefault(c.path, by_orig)
        removed_now = {p: [kept[p][h] for h in sorted(d)] for p, d in drop.items() if d}
        for path, local in keep_now.items():
            kept[path] = [kept[path][h] for h in local]
            removed_count[path] = removed_count.get(path, 0) + len(drop.get(path, []))
        keep_local(student, keep_now)
        if target.macs is not None:
            macs_now = count_macs(student, size)
        steps_log.append({"step": step, "removed": removed_now, "scores": step_scores})

    spec = handle.input_spec
    top1_before = evaluate(teacher, pdata.val, spec)["top1"]
    top1_pruned = evaluate(student, pdata.val, spec)["top1"]
    ft_log: list[dict] = []
    top1_ft = None
    if pc.finetune_epochs > 0:
        cfg = TrainConfig(epochs=pc.finetune_epochs, batch_size=pc.batch_size, lr=pc.finetune_lr)
        ft_log = fit(
            student,
            pdata.train,
            spec,
            cfg,
            seed=seed,
            teacher=teacher if pc.distill else None,
            description="recovery fine-tune",
        )
        top1_ft = evaluate(student, pdata.val, spec)["top1"]
    student.eval()

    new_config = ModelConfig(
        handle.config.name,
        handle.config.num_classes,
        handle.config.input_size,
        dict(handle.config.options),
        {p: list(k) for p, k in kept.items()},
    )
    reload_diff = _verify_rebuild(student, new_config, pdata.val.subset(4, seed).to_model_input(spec), source)

    residual_only = [p for p, k in kept.items() if not k]
    headless = [
        {"path": b.path, "kind": b.kind} for b in attention_blocks(teacher) if not b.adapter.has_heads
    ]
    kinds = {b.path: b.kind for b in attention_blocks(teacher, with_headless=False)}
    block_rows = [
        BlockRow(
            path=p,
            kind=kinds.get(p, "residual_only"),
            heads_original=original[p],
            heads_before=heads_before[p],
            heads_after=len(kept[p]),
            kept=list(kept[p]),
            removed=[h for h in current_kept(handle.config, original)[p] if h not in kept[p]],
            scores=first_scores.get(p, [None] * original[p]),
            residual_only=not kept[p],
        )
        for p in original
    ]
    n_before, n_after = sum(heads_before.values()), sum(len(k) for k in kept.values())
    pruned = ModelHandle(
        module=student,
        config=new_config,
        input_spec=spec,
        kind="fp32",
        history=list(handle.history),
        metrics={"val": {"top1": top1_ft if top1_ft is not None else top1_pruned}, "data": data},
        extra=dict(handle.extra),
    )
    normalized = pc.normalize if method.normalizable else None
    distilled = bool(pc.distill and pc.finetune_epochs > 0)
    report = PruneReport(
        checkpoint=source,
        model=handle.config.name,
        input_size=size,
        data=data,
        importance=pc.importance,
        importance_description=method.description,
        normalize=normalized,
        scope=pc.scope,
        target=target.describe(),
        ratio=pc.ratio,
        heads_requested=pc.heads,
        target_macs=pc.target_macs,
        min_heads_per_block=pc.min_heads_per_block,
        iterative_steps=pc.iterative_steps,
        seed=seed,
        score_images=len(pdata.score.labels) if pdata.score is not None else 0,
        heads=HeadCounts(before=n_before, after=n_after, removed=n_before - n_after),
        params=BeforeAfter(before=count_params(teacher), after=count_params(student)),
        macs=BeforeAfter(before=macs_before, after=count_macs(student, size)),
        top1=PruneTop1(before=top1_before, after_prune=top1_pruned, after_finetune=top1_ft, n=len(pdata.val)),
        finetune=FinetuneInfo(epochs=pc.finetune_epochs, distill=distilled, lr=pc.finetune_lr, log=ft_log),
        blocks=block_rows,
        headless_blocks=[HeadlessBlock(**b) for b in headless],
        residual_only_blocks=residual_only,
        steps=steps_log,
        reload_max_abs_diff=reload_diff,
        heads_kept=new_config.heads_kept or {},
    )
    history = {"data", "importance", "normalize", "scope", "target", "min_heads_per_block", "iterative_steps"}
    history |= {"heads", "top1", "residual_only_blocks"}
    pruned.with_step(
        "prune",
        **report.model_dump(mode="json", include=history),
        finetune={"epochs": pc.finetune_epochs, "distill": distilled},
    )
    report.seconds = round(time.perf_counter() - start, 1)
    return pruned, report


@torch.no_grad()
def _verify_rebuild(student: torch.nn.Module, config: ModelConfig, x: torch.Tensor, source: str) -> float:
    """Rebuild the architecture from `heads_kept`, load the pruned weights, compare outputs."""
    rebuilt = build_model(config)
    try:
        load_state_into(rebuilt, student.state_dict(), Path(source), config.name)
    except InputError as exc:  # our bug, not the user's input
        raise RuntimeError(f"pruned weights do not fit the model rebuilt from heads_kept: {exc}") from None
    diff = float((predict_logits(rebuilt, x) - predict_logits(student, x)).abs().max()) if len(x) else 0.0
    if not diff <= 1e-5:
        raise RuntimeError(
            f"pruned model rebuilt from heads_kept differs from the pruned model by {diff:.2e}"
        )
    return diff


def prune_checkpoint(
    ckpt: Path | str | ModelHandle,
    data: str,
    out: Path | str,
    config: PruneConfig | None = None,
    *,
    report_dir: Path | str | None = None,
    seed: int = 0,
    data_options: DataConfig | None = None,
    **overrides: Any,
) -> PruneReport:
    """Prune attention heads of `ckpt`, write the pruned checkpoint to `out`, return the report.

    `config` (default `PruneConfig()`) with any of its fields replaced by `overrides`, e.g.
    `ratio=0.5`: exactly one of `ratio` (share of the heads to remove, in [0, 1)), `heads` (number of
    heads to remove) and `target_macs` (MAC budget of the pruned model). Report files (JSON, Markdown,
    heat map) go to `report_dir` when given. Nothing is written if anything fails.
    """
    cfg = PruneConfig.build(config, **overrides)
    out = Path(out)
    report_dir = Path(report_dir) if report_dir is not None else None
    check_target(cfg)
    IMPORTANCE.get(cfg.importance)
    NORMALIZATIONS.get(cfg.normalize)
    SCOPES.get(cfg.scope)
    _check_outputs(out, report_dir)
    if isinstance(ckpt, ModelHandle):
        handle, source = ckpt, "<model handle>"
        handle = dataclasses.replace(
            handle, module=clone_model(handle.module)
        )  # never modify the caller's model
    else:
        handle, source = load_checkpoint(ckpt), str(ckpt)
    pruned, report = prune_handle(handle, data, cfg, seed=seed, source=source, data_options=data_options)
    report.out = str(out)
    save_checkpoint(pruned, out)
    report.files["checkpoint"] = str(out)
    if report_dir is not None:
        write_reports(report, report_dir)
    return report
