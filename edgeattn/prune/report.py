"""The prune report: JSON (everything), Markdown (for people) and a heat map of head importance."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeattn.fileio import atomic_output, write_json, write_text
from edgeattn.reporting import fmt_count, fmt_fixed, md_table

if TYPE_CHECKING:
    from edgeattn.prune.result import PruneReport

REPORT_FILES = {"json": "prune_report.json", "markdown": "prune_report.md", "heatmap": "head_importance.png"}
BLOCK_COLUMNS = [
    "block",
    "kind",
    "heads kept",
    "kept (original index)",
    "scores (original head order; × removed)",
]


def markdown_report(report: dict[str, Any]) -> str:
    """The report as Markdown: summary, per-block table (kept heads and scores), notes."""
    t, p, m, h = report["top1"], report["params"], report["macs"], report["heads"]
    lines = [
        f"# Head pruning: {report['model']} ({report['input_size']}×{report['input_size']})",
        "",
        f"- checkpoint: `{report['checkpoint']}` → `{report['out']}`",
        f"- data: `{report['data']}` ("
        + (
            f"scored on {report['score_images']} calibration images, "
            if report["score_images"]
            else "scores need no data, "
        )
        + f"top-1 on {t['n']} validation images)",
        f"- importance: **{report['importance']}** ({report['importance_description']})"
        + (f", normalised: {report['normalize']}" if report.get("normalize") else "")
        + f", scope **{report['scope']}**, "
        f"target {report['target']}, at least {report['min_heads_per_block']} head(s) per block, "
        f"{report['iterative_steps']} step(s)",
        "",
    ]
    sizes = [["heads", h["before"], h["after"], f"−{h['removed']}"]]
    for label, n in (("parameters", p), ("MACs", m)):
        change = f"{100 * (n['after'] / n['before'] - 1):+.1f} %"
        sizes.append([label, fmt_count(n["before"]), fmt_count(n["after"]), change])
    top1 = [
        ["unpruned", fmt_fixed(t["before"]), ""],
        ["pruned, no fine-tune", fmt_fixed(t["after_prune"]), f"{t['after_prune'] - t['before']:+.2f}"],
    ]
    ft = report["finetune"]
    if t.get("after_finetune") is not None:
        how = "distillation from the unpruned model" if ft["distill"] else "labels only"
        label = f"pruned + {ft['epochs']} epoch(s) fine-tune ({how})"
        top1.append([label, fmt_fixed(t["after_finetune"]), f"{t['after_finetune'] - t['before']:+.2f}"])
    blocks = []
    for b in report["blocks"]:
        scores = []
        for i, s in enumerate(b["scores"]):
            if s is None:
                scores.append("·")
            else:
                scores.append(f"{s:.3f}" + ("" if i in b["kept"] else "×"))
        kept_txt = ", ".join(map(str, b["kept"])) if b["kept"] else "none — residual only"
        heads_kept = f"{len(b['kept'])}/{b['heads_original']}"
        blocks.append([f"`{b['path']}`", b["kind"], heads_kept, kept_txt, " ".join(scores)])
    lines += [
        md_table(["", "before", "after", "change"], sizes, [None, "right", "right", "right"]),
        "",
        md_table(["top-1 %", "value", "vs unpruned"], top1, [None, "right", "right"]),
        "",
        "## Heads per block",
        "",
        md_table(BLOCK_COLUMNS, blocks, [None, None, "right", None, None]),
    ]
    if report["headless_blocks"]:
        lines += [
            "",
            "Attention blocks without heads (not prunable by head): "
            + ", ".join(f"`{b['path']}` ({b['kind']})" for b in report["headless_blocks"]),
        ]
    if report["residual_only_blocks"]:
        lines += [
            "",
            "**Blocks whose heads were all removed** (they are now their residual path alone): "
            + ", ".join(f"`{p}`" for p in report["residual_only_blocks"]),
        ]
    lines += [
        "",
        f"Rebuilt from the checkpoint's `heads_kept`, the pruned model matches the in-memory one to {report['reload_max_abs_diff']:.1e} (max abs diff).",
    ]
    return "\n".join(lines) + "\n"


def head_importance_heatmap(
    blocks: list[dict[str, Any]], path: Path | str, title: str = "head importance"
) -> Path:
    """Heat map (blocks × heads) of importance scores; removed heads carry a ×, absent cells are grey.

    `blocks` are the report's block entries: `path`, `scores` (one per original head, None where the
    head was already gone before this prune) and `kept` (original indices).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    path = Path(path)
    width = max((len(b["scores"]) for b in blocks), default=1) or 1
    grid = np.full((max(1, len(blocks)), width), np.nan)
    for r, b in enumerate(blocks):
        for c, s in enumerate(b["scores"]):
            if s is not None:
                grid[r, c] = s
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * width + 3.0), max(2.5, 0.38 * len(blocks) + 1.5)))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#d0d0d0")
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, aspect="auto")
    for r, b in enumerate(blocks):
        for c in range(len(b["scores"])):
            if b["scores"][c] is not None and c not in b["kept"]:
                ax.text(c, r, "×", ha="center", va="center", color="red", fontsize=12, fontweight="bold")
    ax.set_xticks(range(width), [str(i) for i in range(width)])
    ax.set_yticks(range(len(blocks)), [b["path"] for b in blocks], fontsize=7)
    ax.set_xlabel("head (original index)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="importance")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def write_reports(report: PruneReport, report_dir: Path) -> dict[str, str]:
    """Write JSON, Markdown and the heat map into `report_dir` (each file atomically)."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    files = {k: str(report_dir / v) for k, v in REPORT_FILES.items()}
    report.files.update(files)
    data = report.to_dict()
    head_importance_heatmap(
        data["blocks"],
        files["heatmap"],
        f"{report.model}: {report.importance} importance ({report.heads.removed} of {report.heads.before} heads removed)",
    )
    write_text(files["markdown"], markdown_report(data))
    write_json(files["json"], data)
    return files
