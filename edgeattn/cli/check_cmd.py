"""`edgeattn check tensorrt MODEL.onnx`: is this ONNX ready for TensorRT X? Checked without TensorRT or a GPU.

Exit codes follow the gates: 0 ready, 1 not ready (every finding listed with its node), 2 bad input
(no such file, not an ONNX model, an unsupported --tensorrt-version).
"""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.cli.common import JSON_OPTION, emit_json, out

check_app = typer.Typer(
    help="Check an artifact for a runtime without that runtime (exit 0 ready, 1 not ready, 2 bad input).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(check_app, name="check")


@check_app.command("tensorrt")
def check_tensorrt(
    model: Path = typer.Argument(..., help="ONNX model to check.", dir_okay=False),
    tensorrt_version: str = typer.Option(
        None,
        "--tensorrt-version",
        help="TensorRT version the device has, e.g. 8.6 (JetPack 6.0), 10.3, 11 "
        "(default: the installed one, else the newest supported).",
    ),
    batch: int = typer.Option(None, "--batch", help="The fixed batch the engine is built for."),
    dynamic_batch: str = typer.Option(
        None, "--dynamic-batch", help="MIN:OPT:MAX batch range of the optimization profile (e.g. 1:8:32)."
    ),
    json_out: Path = JSON_OPTION,
) -> None:
    """Lint an ONNX against the rules TensorRT's ONNX parser enforces, for one TensorRT version.

    Checks the opset range and every operator against that version's parser, Q/DQ types (int8; uint8
    fails), zero points (all 0), scales (constant, > 0, per tensor for activations), per-channel weight
    axes of Conv/Gemm/MatMul, Q/DQ pairing, and dynamic dimensions against the batch profile (from
    --batch/--dynamic-batch, else the manifest beside an edgeattn ONNX).

    Example: edgeattn check tensorrt exported/mvit-int8.onnx --tensorrt-version 8.6
    """
    from rich.markup import escape

    from edgeattn.errors import GateFailure, InputError
    from edgeattn.export import parse_dynamic_batch
    from edgeattn.export.tensorrt_lint import Profile, check_file
    from edgeattn.export.tensorrt_versions import tensorrt_target

    if batch is not None and dynamic_batch is not None:
        raise InputError("--batch and --dynamic-batch were both given", "give one of them")
    if batch is not None and batch < 1:
        raise InputError(f"--batch {batch} is not a batch size", "use --batch 1 or more")
    profile = Profile(batch, batch, batch) if batch is not None else None
    if dynamic_batch is not None:
        profile = Profile(*parse_dynamic_batch(dynamic_batch))
    target = tensorrt_target(tensorrt_version)
    report = check_file(model, target, profile)
    emit_json(report.to_dict(), json_out)
    title = escape(f"{model.name} for TensorRT {target.label} ({len(report.rules)} rules)")
    if report.passed:
        out.print(f"[green]✓[/] {title}: ready", soft_wrap=True)
        return
    out.print(f"[red]✗[/] {title}: {len(report.findings)} finding(s)", soft_wrap=True)
    for f in report.findings:  # one line each, full node names (a table would cut them)
        out.print(f"  [{f.rule}] {f.node or '(model)'}: {f.message}", soft_wrap=True, markup=False)
    raise GateFailure(
        f"{model.name} is not ready for TensorRT {target.version}: {len(report.findings)} finding(s) (listed above)",
        "fix them (see each finding) and check again",
    )
