"""`edgeattn export`: a checkpoint (FP32, pruned or quantized) -> ONNX / TensorRT engine / Core ML package."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.cli.common import JSON_OPTION, OUT_HELP, emit_json, print_table
from edgeattn.cli.common import out as console


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)


def export_command(
    checkpoint: Path = typer.Argument(
        ..., help="Checkpoint to export (.pt: FP32, pruned, or quantized by `edgeattn quantize`)."
    ),
    target: str = typer.Option(..., "--target", "-t", help="onnx, tensorrt or coreml."),
    out: Path = typer.Option(
        ..., "--out", "-o", help=f"Artifact path (.onnx, .engine/.plan, .mlpackage). {OUT_HELP}"
    ),
    precision: str = typer.Option(
        None,
        "--precision",
        "-p",
        help="fp32, fp16, int8 (quantized checkpoint), int8-weights (coreml). Default: the target's (onnx fp32, tensorrt/coreml fp16).",
    ),
    batch: int = typer.Option(1, "--batch", min=1, help="Fixed batch size."),
    dynamic_batch: str = typer.Option(
        None, "--dynamic-batch", help="Batch range MIN:OPT:MAX (e.g. 1:8:32) instead of a fixed --batch."
    ),
    opset: int = typer.Option(17, "--opset", help="ONNX opset (onnx/tensorrt; INT8 Q/DQ needs 13+)."),
    data: str = typer.Option(
        None, "--data", help="Data set for calibration where needed (Core ML int8 activations)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing artifact."),
    onnx_exporter: str = typer.Option(
        None, "--onnx-exporter", help="torch exporter: torchscript (default) or dynamo (opset 18+)."
    ),
    fp16_io: bool = typer.Option(
        None, "--fp16-io/--fp32-io", help="onnx fp16: FP16 inputs/outputs too (default FP32 I/O)."
    ),
    qdq_runtime: str = typer.Option(
        None, "--qdq-runtime", help="onnx int8: runtime the Q/DQ placement is made for (default onnxruntime)."
    ),
    workspace_mib: int = typer.Option(
        None, "--workspace-mib", help="tensorrt: builder workspace limit in MiB (default 1024)."
    ),
    timing_cache: Path = typer.Option(
        None, "--timing-cache", help="tensorrt: timing cache file, loaded and saved (default beside --out)."
    ),
    coreml_input: str = typer.Option(
        None, "--coreml-input", help="coreml: image (RGB 0..255, normalisation folded in; default) or tensor."
    ),
    deployment_target: str = typer.Option(
        None,
        "--deployment-target",
        help="coreml: minimum deployment target, e.g. iOS16 (default), iOS17, macOS14.",
    ),
    coreml_calibrator: str = typer.Option(
        None,
        "--coreml-calibrator",
        help="coreml int8: activation statistics from Core ML predictions (coreml, macOS) or the reference executor (reference); default auto.",
    ),
    json_out: Path = JSON_OPTION,
) -> None:
    """Export a checkpoint to a deployable artifact with a manifest beside it (PATH.json).

    Examples:
      edgeattn export mvit.pt --target onnx --dynamic-batch 1:8:32 --out exported/mvit.onnx
      edgeattn export mvit-int8.pt --target onnx --precision int8 --out exported/mvit-int8.onnx
      edgeattn export mvit.pt --target tensorrt --precision fp16 --out exported/mvit.engine
      edgeattn export mvit.pt --target coreml --precision int8-weights --out exported/mvit.mlpackage
    """
    from edgeattn.export import export_artifact, parse_dynamic_batch

    options = {
        "exporter": onnx_exporter,
        "fp16_io": fp16_io,
        "runtime": qdq_runtime,
        "workspace_mib": workspace_mib,
        "timing_cache": str(timing_cache) if timing_cache else None,
        "input": coreml_input,
        "deployment_target": deployment_target,
        "calibrator": coreml_calibrator,
    }
    given = {k: v for k, v in options.items() if v is not None}
    dyn = parse_dynamic_batch(dynamic_batch) if dynamic_batch else None
    _reject_foreign_options(target, given)
    manifest = export_artifact(
        checkpoint,
        target,
        out,
        precision=precision,
        batch=batch,
        dynamic_batch=dyn,
        opset=opset,
        data=data,
        overwrite=overwrite,
        **given,
    )
    rows = [
        ["model", manifest.model["name"]],
        ["precision", manifest.precision],
        [
            "input",
            f"{manifest.input_shape} ({'0..255 image' if manifest.image_input else 'normalised tensor'})",
        ],
        ["sha256", manifest.sha256[:16] + "…"],
    ]
    checks = manifest.details.get("checks_vs_torch")
    if checks:
        worst = max(c["max_abs_diff"] for c in checks.values())
        rows.append(["max |Δ| vs torch", f"{worst:.2e}"])
    program = manifest.details.get("program")
    if program:
        rows.append(["Core ML ops", str(program["n_ops"])])
    print_table(f"exported {Path(str(checkpoint)).name} -> {manifest.target}", ["", "value"], rows)
    console.print(f"wrote {out} and its manifest {out}.json", soft_wrap=True, markup=False)
    emit_json(manifest.to_dict(), json_out)


# Which CLI option belongs to which target, so `--workspace-mib` on `--target onnx` is an error
# rather than silently ignored.
_OPTION_FLAGS = {
    "exporter": ("--onnx-exporter", ("onnx", "tensorrt")),
    "fp16_io": ("--fp16-io", ("onnx",)),
    "runtime": ("--qdq-runtime", ("onnx",)),
    "workspace_mib": ("--workspace-mib", ("tensorrt",)),
    "timing_cache": ("--timing-cache", ("tensorrt",)),
    "input": ("--coreml-input", ("coreml",)),
    "deployment_target": ("--deployment-target", ("coreml",)),
    "calibrator": ("--coreml-calibrator", ("coreml",)),
}


def _reject_foreign_options(target: str, given: dict) -> None:
    from edgeattn.errors import InputError
    from edgeattn.export import exporter_for

    exporter_for(target)  # unknown target: the registry's "did you mean" error first
    for key in given:
        flag, targets = _OPTION_FLAGS[key]
        if target not in targets:
            raise InputError(
                f"{flag} does not apply to --target {target}", f"it is for --target {' / '.join(targets)}"
            )
