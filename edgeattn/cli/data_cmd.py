"""`edgeattn data build|info`: materialise a data-set spec as an ImageFolder tree, or describe it."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.cli.common import JSON_OPTION, emit_json, print_table
from edgeattn.cli.options import with_config
from edgeattn.data.config import DataConfig

data_app = typer.Typer(
    help="Build and inspect data sets (builtin:digits, ImageFolder dirs, file lists, .npz files).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@data_app.command("build")
def build(
    spec: str = typer.Argument(..., help="Data-set spec, e.g. builtin:digits."),
    size: int = typer.Option(64, "--size", help="Image side in pixels for built-in sets."),
    out: Path = typer.Option(
        ..., "--out", help="Folder to write (train/, calib/, val/, one subfolder per class)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing folder."),
) -> None:
    """Write a data set as an ImageFolder tree of PNGs (train/, calib/, val/).

    Example: edgeattn data build builtin:digits --size 64 --out data/digits64
    """
    from edgeattn.data.export import write_imagefolder
    from edgeattn.errors import InputError

    if out.exists() and not overwrite:
        raise InputError(f"{out} already exists", "pass --overwrite or choose another --out")
    counts = write_imagefolder(spec, size, out)
    print_table(f"wrote {out}", ["split", "images"], [[k, v] for k, v in counts.items()])


@data_app.command("info")
@with_config(DataConfig, param="data_options", exclude=("workers", "skip_bad_images"))
def info(
    spec: str = typer.Argument(..., help="Data-set spec."),
    size: int = typer.Option(64, "--size", help="Image side for built-in sets."),
    json_out: Path = JSON_OPTION,
    data_options: DataConfig | None = None,
) -> None:
    """Images and classes per split of a data set (folders and lists: listed, not decoded).

    Example: edgeattn data info builtin:digits
    """
    from edgeattn.data import SPLITS, ImageSet, load_split

    rows, data = [], {}
    for split in SPLITS:
        s = load_split(spec, split, size, data_options)
        counts = s.labels.bincount(minlength=s.num_classes).tolist()
        shape = list(s.images.shape[1:]) if isinstance(s, ImageSet) else None  # files: each its own size
        data[split] = {"images": len(s), "classes": s.classes, "per_class": counts, "shape": shape}
        rows.append(
            [split, len(s), s.num_classes, "x".join(map(str, shape or ["any"])), min(counts), max(counts)]
        )
    print_table(spec, ["split", "images", "classes", "C x H x W", "min/class", "max/class"], rows)
    emit_json(data, json_out)
