"""`edgeattn prune`: remove attention heads (structurally), optionally fine-tune, report."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from edgeattn.cli.common import JSON_OPTION, OUT_HELP, emit_json, print_table
from edgeattn.cli.common import out as console
from edgeattn.cli.options import with_config
from edgeattn.data.config import DataConfig
from edgeattn.prune.config import PruneConfig
from edgeattn.reporting import fmt_count

if TYPE_CHECKING:
    from edgeattn.prune.result import PruneReport

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


@with_config(
    PruneConfig,
    flags={"distill": "--distill/--no-distill"},
    parsers={"target_macs": (str, lambda text: parse_macs(text))},
)
@with_config(DataConfig, param="data_options")
def prune(
    ckpt: Path = typer.Argument(..., help="Checkpoint to prune (edgeattn .pt).", dir_okay=False),
    data: str = typer.Option(
        ...,
        "--data",
        help="Data-set spec: scores heads on its calib split, top-1 on val, fine-tunes on train.",
    ),
    out: Path = typer.Option(..., "--out", help=OUT_HELP, dir_okay=False),
    report_dir: Path = typer.Option(
        None,
        "--report-dir",
        help="Write prune_report.json/.md and head_importance.png here.",
        file_okay=False,
    ),
    seed: int = typer.Option(0, "--seed"),
    json_out: Path = JSON_OPTION,
    config: PruneConfig | None = None,
    data_options: DataConfig | None = None,
) -> None:
    """Remove whole attention heads so the model really gets smaller, then optionally fine-tune.

    Example: edgeattn prune mvit.pt --data builtin:digits --ratio 0.5 --finetune-epochs 2 --out mvit_pruned.pt --report-dir exported/prune
    """
    from edgeattn.fileio import check_writable
    from edgeattn.prune import prune_checkpoint

    if json_out is not None:
        check_writable(json_out)
    report = prune_checkpoint(
        ckpt, data, out, config, report_dir=report_dir, seed=seed, data_options=data_options
    )
    render(report, out, report_dir is not None)
    emit_json(report.to_dict(), json_out)


def render(report: PruneReport, out: Path, with_files: bool) -> None:
    """Per-block table (scores, kept heads) and the before/after summary."""
    rows = []
    for b in report.blocks:
        scores = " ".join(
            "·" if s is None else f"{s:.2f}" + ("" if i in b.kept else "×") for i, s in enumerate(b.scores)
        )
        kept = ",".join(map(str, b.kept)) or "none (residual only)"
        rows.append([b.path, b.kind, f"{len(b.kept)}/{b.heads_original}", kept, scores])
    print_table(
        f"{report.importance} importance, {report.target} ({report.scope})",
        ["block", "kind", "heads", "kept", "scores (× removed)"],
        rows,
    )
    t, p, m, h = report.top1, report.params, report.macs, report.heads
    summary = [
        ["heads", h.before, h.after],
        ["params", fmt_count(p.before), fmt_count(p.after)],
        ["MACs", fmt_count(m.before), fmt_count(m.after)],
        ["top-1 % (no fine-tune)", f"{t.before:.2f}", f"{t.after_prune:.2f}"],
    ]
    if t.after_finetune is not None:
        ft = report.finetune
        how = f"{ft.epochs} ep fine-tune{', distilled' if ft.distill else ''}"
        summary.append([f"top-1 % ({how})", f"{t.before:.2f}", f"{t.after_finetune:.2f}"])
    print_table(f"pruned {report.model} -> {out}", ["", "before", "after"], summary)
    if report.headless_blocks:
        console.print(
            "blocks without heads (not pruned): "
            + ", ".join(f"{b.path} ({b.kind})" for b in report.headless_blocks)
        )
    if report.residual_only_blocks:
        console.print(
            "[bold yellow]all heads removed — now residual-only:[/] " + ", ".join(report.residual_only_blocks)
        )
    if with_files:
        console.print(f"report: {report.files['markdown']}, {report.files['heatmap']}")
