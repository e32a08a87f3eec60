"""`edgeattn eval`: top-1/top-5 of any artifact (checkpoint, quantized checkpoint, .onnx, engine,
.mlpackage) on a data set, run on the artifact's own runtime."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.byo.config import SPEC_OPTIONS, ArtifactSpec
from edgeattn.cli.common import JSON_OPTION, emit_json, print_table, with_device
from edgeattn.cli.options import with_config
from edgeattn.data.config import DataConfig
from edgeattn.device.config import DeviceConfig


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)


@with_config(ArtifactSpec, **SPEC_OPTIONS)
@with_config(DataConfig, param="data_options")
@with_device
def eval_command(
    artifact: Path = typer.Argument(
        ..., help="Checkpoint (.pt), .onnx, TensorRT engine (.engine/.plan), .mlpackage or web export folder."
    ),
    data: str = typer.Option("builtin:digits", "--data", help="Data-set spec."),
    split: str = typer.Option("val", "--split", help="train, calib or val."),
    limit: int = typer.Option(None, "--limit", help="Evaluate only this many images (a fixed subset)."),
    runtime: str = typer.Option(
        None, "--runtime", help="Run on this runner instead of the artifact's default (e.g. onnxruntime)."
    ),
    threads: int = typer.Option(None, "--threads", help="CPU threads for the runtime."),
    json_out: Path = JSON_OPTION,
    device: DeviceConfig | None = None,
    spec: ArtifactSpec | None = None,
    data_options: DataConfig | None = None,
) -> None:
    """Evaluate top-1/top-5 of an artifact on a split of a data set, on the artifact's own runtime.

    An .onnx/.mlpackage that edgeattn did not export (no manifest) needs its input spec: --mean/--std
    (and --input-size, --interpolation, --crop-pct) or --input-spec-from CKPT. A folder or file list is
    read in --workers processes with timm's eval transform; --json reports loading and model images/s.

    Examples:
      edgeattn eval exported/mvit_int8.onnx --data builtin:digits --json eval.json
      edgeattn eval their_model.onnx --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --data builtin:digits
    """
    from rich.markup import escape

    from edgeattn.device.facts import summary
    from edgeattn.evaluation.artifact import evaluate_artifact

    result = evaluate_artifact(
        artifact,
        data,
        split,
        limit=limit,
        runtime=runtime,
        threads=threads,
        device=device,
        spec=spec,
        data_options=data_options,
    )
    speed = [
        [f"{what} images/s", f"{v:.1f}"]
        for what, v in (
            ("loading", result.load_images_per_s),
            ("model", result.model_images_per_s),
            ("overall", result.images_per_s),
        )
        if v
    ]
    print_table(
        escape(f"{artifact.name} on {data} [{split}] — {result.runtime}"),
        ["metric", "value"],
        [
            ["top-1 %", f"{result.top1:.2f}"],
            ["top-5 %", f"{result.top5:.2f}"],
            ["images", result.n],
            ["precision", result.precision],
            *([["skipped (unreadable)", result.skipped]] if result.skipped else []),
            *speed,
            *([["device", summary(result.device)]] if result.device else []),
        ],
    )
    emit_json(result.to_dict(), json_out)
