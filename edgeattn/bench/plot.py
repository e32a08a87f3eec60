"""PNG plots of benchmark reports: median latency per artifact (one panel per batch size, p90 as the
whisker) and, where the artifacts carry accuracy, top-1 against batch-1 latency."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from edgeattn.bench.report import BenchReport
from edgeattn.fileio import atomic_output


def write_bench_plot(report: BenchReport | Sequence[BenchReport], path: Path | str) -> Path:
    """One row of panels per report (e.g. per model): latency per batch size, then accuracy vs latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reports = [report] if isinstance(report, BenchReport) else list(report)
    reports = [r for r in reports if r.rows] or reports[:1]
    batches = sorted({row.batch for r in reports for row in r.rows}) or [1]
    has_acc = any(row.top1 is not None for r in reports for row in r.rows)
    ncols = len(batches) + (1 if has_acc else 0)
    row_h = 1.3 + 0.38 * max(3, _max_artifacts(reports))
    fig, axes = plt.subplots(
        len(reports),
        ncols,
        figsize=(2.8 + 4.6 * ncols + (0.8 if has_acc else 0), 0.6 + row_h * len(reports)),
        squeeze=False,
    )
    for i, rep in enumerate(reports):
        labels = list(dict.fromkeys(row.label for row in rep.rows))
        ys = list(range(len(labels)))
        for j, batch in enumerate(batches):
            ax = axes[i][j]
            rows = {row.label: row for row in rep.rows if row.batch == batch}
            med = [rows[lbl].median_ms if lbl in rows else 0.0 for lbl in labels]
            err = [max(0.0, rows[lbl].p90_ms - rows[lbl].median_ms) if lbl in rows else 0.0 for lbl in labels]
            ax.barh(
                ys,
                med,
                xerr=[[0] * len(err), err],
                color=[_colour(rows.get(lbl)) for lbl in labels],
                capsize=3,
            )
            positive = [m for m in med if m > 0]
            log = bool(positive) and max(positive) / min(positive) > 30  # e.g. a thrashing eager baseline
            if log:
                ax.set_xscale("log")
            for y, lbl in zip(ys, labels, strict=True):
                r = rows.get(lbl)
                if r is None:
                    ax.text(min(positive or [1.0]), y, " skipped", va="center", fontsize=7, color="grey")
                    continue
                txt = f" {r.median_ms:.1f} ms" + (
                    "" if r.speedup is None or r.is_baseline else f" ({r.speedup:.2f}×)"
                )
                ax.text(max(r.median_ms, r.p90_ms), y, txt, va="center", fontsize=7)
            ax.set_yticks(ys, labels if j == 0 else [""] * len(labels), fontsize=8)
            ax.set_ylim(len(labels) - 0.5, -0.5)
            top = max([rows[lbl].p90_ms for lbl in labels if lbl in rows] or [1.0])
            ax.set_xlim(min(positive) / 2 if log else 0, top * (6 if log else 1.5))
            ax.set_xlabel(f"median ms, batch {batch}{' (log)' if log else ''}; whisker p90", fontsize=8)
            ax.set_title(f"{rep.title} — batch {batch}", fontsize=9, loc="left")
            ax.tick_params(axis="x", labelsize=7)
        if has_acc:
            _accuracy_panel(axes[i][-1], rep, batches[0])
    fig.suptitle(_env_title(reports[0]), fontsize=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tight_layout warns when a long label leaves it little room
        fig.tight_layout()
    path = Path(path)
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def _max_artifacts(reports: list[BenchReport]) -> int:
    return max((len({row.label for row in r.rows}) for r in reports), default=1)


def _colour(row) -> str:  # noqa: ANN001
    if row is None:
        return "lightgrey"
    if row.is_baseline:
        return "tab:grey"
    return {"int8": "tab:orange", "fp16": "tab:green"}.get(row.precision, "tab:blue")


def _accuracy_panel(ax, rep: BenchReport, batch: int) -> None:  # noqa: ANN001
    rows = [r for r in rep.rows if r.batch == batch and r.top1 is not None]
    for k, r in enumerate(rows):
        ax.scatter(r.median_ms, r.top1, color=_colour(r), s=30, zorder=3)
        ax.annotate(str(k + 1), (r.median_ms, r.top1), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if rows and max(r.median_ms for r in rows) / max(min(r.median_ms for r in rows), 1e-9) > 30:
        ax.set_xscale("log")
    legend = "\n".join(f"{k + 1}: {r.label}" for k, r in enumerate(rows))
    ax.text(
        0.98,
        0.03,
        legend,
        transform=ax.transAxes,
        fontsize=6,
        ha="right",
        va="bottom",
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
    )
    notes = sorted({r.accuracy_note for r in rows if r.accuracy_note})
    ax.set_xlabel(f"median ms, batch {batch}" + (f"\n{'; '.join(notes)}" if notes else ""), fontsize=7)
    ax.set_ylabel("top-1 %", fontsize=8)
    ax.set_title("accuracy vs latency", fontsize=9, loc="left")
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def _env_title(rep: BenchReport) -> str:
    cpu = rep.env.get("cpu", {})
    v = rep.env.get("versions", {})
    return (
        f"{cpu.get('model', '?')} · {rep.env.get('threads')} threads · onnxruntime {v.get('onnxruntime', '?')} · "
        f"torch {v.get('torch', '?')} · {rep.env.get('time', '')}"
    )
