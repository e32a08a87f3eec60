"""`edgeattn prune`: remove attention heads (structurally), optionally fine-tune, report."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from edgeattn.cli.common import JSON_OPTION, OUT_HELP, emit_json, fmt_count, print_table
from edgeattn.cli.common import out as console

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9}


def register(app: typer.Typer) -> None:
    app.command("prune")(prune)


def parse_macs(text: str | None) -> float | None:
    """'150M', '1.2G', '3e6', '800k' -> MACs."""
    from edgeattn.errors import InputError

    if text is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*(?:MACs?)?\s*", text)
    if not m:
        raise InputError(
            f"cannot read --target-macs {text!r}", "write a number with an optional k/M/G suffix, e.g. 150M"
        )
    return float(m.group(1)) * _SUFFIX[m.group(2).lower()]


def prune(
    ckpt: Path = typer.Argument(..., help="Checkpoint to prune (edgeattn .pt).", dir_okay=False),
    data: str = typer.Option(
        ...,
        "--data",
        help="Data-set spec: scores heads on its calib split, top-1 on val, fine-tunes on train.",
    ),
    out: Path = typer.Option(..., "--out", help=OUT_HELP, dir_okay=False),
    ratio: float = typer.Option(None, "--ratio", help="Share of all heads to remove, in [0, 1)."),
    heads: int = typer.Option(None, "--heads", help="Number of heads to remove."),
    target_macs: str = typer.Option(
        None, "--target-macs", help="MAC budget of the pruned model (e.g. 150M)."
    ),
    importance: str = typer.Option("taylor", "--importance", help="taylor | l1 | entropy | random."),
    normalize: str = typer.Option(
        "none",
        "--normalize",
        help="taylor scores: none (rank in loss units) | layer (L2 per layer, as Michel et al. 2019).",
    ),
    scope: str = typer.Option(
        "global", "--scope", help="global (rank all heads together) | per-layer (same share per block)."
    ),
    min_heads_per_block: int = typer.Option(
        1,
        "--min-heads-per-block",
        help="Heads every block keeps; 0 lets a block lose all (it becomes residual-only).",
    ),
    finetune_epochs: int = typer.Option(
        0, "--finetune-epochs", help="Recovery fine-tune epochs after pruning."
    ),
    distill: bool = typer.Option(
        True, "--distill/--no-distill", help="Fine-tune with knowledge distillation from the unpruned model."
    ),
    iterative_steps: int = typer.Option(
        1, "--iterative-steps", help="Score, remove a share, re-score ... in this many steps."
    ),
    calib_size: int = typer.Option(
        512, "--calib-size", help="Calibration images used for scoring (at most)."
    ),
    finetune_lr: float = typer.Option(1e-3, "--finetune-lr", help="Peak learning rate of the fine-tune."),
    report_dir: Path = typer.Option(
        None,
        "--report-dir",
        help="Write prune_report.json/.md and head_importance.png here.",
        file_okay=False,
    ),
    seed: int = typer.Option(0, "--seed"),
    json_out: Path = JSON_OPTION,
) -> None:
    """Remove whole attention heads so the model really gets smaller, then optionally fine-tune.

    Example: edgeattn prune mvit.pt --data builtin:digits --ratio 0.5 --finetune-epochs 2 --out mvit_pruned.pt --report-dir exported/prune
    """
    from edgeattn.fileio import check_writable
    from edgeattn.prune import prune_checkpoint

    if json_out is not None:
        check_writable(json_out)
    report = prune_checkpoint(
        ckpt,
        data,
        out,
        ratio=ratio,
        heads=heads,
        target_macs=parse_macs(target_macs),
        importance=importance,
        scope=scope,
        min_heads_per_block=min_heads_per_block,
        finetune_epochs=finetune_epochs,
        distill=distill,
        iterative_steps=iterative_steps,
        normalize=normalize,
        report_dir=report_dir,
        seed=seed,
        calib_size=calib_size,
        finetune_lr=finetune_lr,
    )
    rows = []
    for b in report["blocks"]:
        scores = " ".join(
            "·" if s is None else f"{s:.2f}" + ("" if i in b["kept"] else "×")
            for i, s in enumerate(b["scores"])
        )
        rows.append(
            [
                b["path"],
                b["kind"],
                f"{len(b['kept'])}/{b['heads_original']}",
                ",".join(map(str, b["kept"])) or "none (residual only)",
                scores,
            ]
        )
    print_table(
        f"{report['importance']} importance, {report['target']} ({report['scope']})",
        ["block", "kind", "heads", "kept", "scores (× removed)"],
        rows,
    )
    t, p, m, h = report["top1"], report["params"], report["macs"], report["heads"]
    summary = [
        ["heads", h["before"], h["after"]],
        ["params", fmt_count(p["before"]), fmt_count(p["after"])],
        ["MACs", fmt_count(m["before"]), fmt_count(m["after"])],
        ["top-1 % (no fine-tune)", f"{t['before']:.2f}", f"{t['after_prune']:.2f}"],
    ]
    if t["after_finetune"] is not None:
        summary.append(
            [
                f"top-1 % ({report['finetune']['epochs']} ep fine-tune{', distilled' if report['finetune']['distill'] else ''})",
                f"{t['before']:.2f}",
                f"{t['after_finetune']:.2f}",
            ]
        )
    print_table(f"pruned {report['model']} -> {out}", ["", "before", "after"], summary)
    if report["headless_blocks"]:
        console.print(
            "blocks without heads (not pruned): "
            + ", ".join(f"{b['path']} ({b['kind']})" for b in report["headless_blocks"])
        )
    if report["residual_only_blocks"]:
        console.print(
            "[bold yellow]all heads removed — now residual-only:[/] "
            + ", ".join(report["residual_only_blocks"])
        )
    if report_dir is not None:
        console.print(f"report: {report['files']['markdown']}, {report['files']['heatmap']}")
    emit_json(report, json_out)
