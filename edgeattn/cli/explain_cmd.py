"""`edgeattn explain`: heat maps of what a checkpoint looks at (one PNG per image + index.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.cli.common import JSON_OPTION, emit_json, print_table
from edgeattn.cli.common import out as console
from edgeattn.cli.options import with_config
from edgeattn.data.config import DataConfig
from edgeattn.explain.config import ExplainConfig


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)


@with_config(ExplainConfig, flags={"heads": "--heads"})
@with_config(DataConfig, param="data_options")
def explain(
    ckpt: Path = typer.Argument(..., help="Checkpoint (.pt: FP32, pruned or INT8).", dir_okay=False),
    data: str = typer.Option(None, "--data", help="Data-set spec the images come from."),
    image: list[Path] = typer.Option(
        None, "--image", help="Explain this image file (repeatable).", dir_okay=False
    ),
    compare: Path = typer.Option(
        None,
        "--compare",
        help="Second checkpoint: same images side by side, with heat-map similarity.",
        dir_okay=False,
    ),
    out: Path = typer.Option(
        ..., "--out", help="Folder for the PNGs, index.md and explain.json.", file_okay=False
    ),
    json_out: Path = JSON_OPTION,
    config: ExplainConfig | None = None,
    data_options: DataConfig | None = None,
) -> None:
    """Overlay heat maps (Grad-CAM, Grad-CAM++, attention, rollout) on images, with predicted and true
    class; --compare B explains a second checkpoint on the same images and classes.

    Example: edgeattn explain mvit.pt --data builtin:digits --images 4 --out exported/explain
    """
    from edgeattn.explain import explain_checkpoint
    from edgeattn.fileio import check_writable

    check_writable(out, folder=True)
    report = explain_checkpoint(
        ckpt, data, out, config, files=image or [], compare=compare, data_options=data_options
    )
    rows = [
        [i.name, i.true or "—", f"{i.predicted} {i.confidence:.0%}"]
        + ([i.predicted_b, f"{i.pearson:.3f}", f"{i.iou:.3f}"] if i.pearson is not None else [])
        for i in report.images
    ]
    cols = ["image", "true", "predicted"]
    if report.compare:
        cols += ["B predicted", "pearson r", f"IoU top {report.top_percent:g}%"]
        rows.append(["mean", "", "", "", f"{report.mean_pearson:.3f}", f"{report.mean_iou:.3f}"])
    print_table(f"{report.method} on {report.layer}", cols, rows)
    console.print(f"wrote {out / 'index.md'}")
    emit_json(report.to_dict(), json_out)
