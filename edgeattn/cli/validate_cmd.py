"""`edgeattn validate` (drift of one artifact against its FP32 reference, with CI gates) and
`edgeattn compare` (several artifacts of one model in one table)."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.byo.config import SPEC_OPTIONS, ArtifactSpec
from edgeattn.cli.common import JSON_OPTION, emit_json, out, print_table, with_device
from edgeattn.cli.options import with_config
from edgeattn.data.config import DataConfig
from edgeattn.device.config import DeviceConfig


def register(app: typer.Typer) -> None:
    app.command("validate")(validate_command)
    app.command("compare")(compare_command)


def _gates(
    max_top1_drop: float | None, min_agreement: float | None, max_kl: float | None, min_cosine: float | None
):
    from edgeattn.validate import Gates

    return Gates().with_overrides(
        max_top1_drop=max_top1_drop, min_agreement=min_agreement, max_kl=max_kl, min_cosine=min_cosine
    )


REFERENCE = typer.Option(
    ..., "--reference", "-r", help="FP32 checkpoint (.pt) the artifact was exported from."
)
DATA = typer.Option("builtin:digits", "--data", help="Data-set spec (builtin:digits, ImageFolder dir, .npz).")
SPLIT = typer.Option("val", "--split", help="train, calib or val.")
LIMIT = typer.Option(None, "--limit", help="Use only this many images (a fixed subset).")
THREADS = typer.Option(None, "--threads", help="CPU threads for the runtimes.")
RUNTIME = typer.Option(
    None, "--runtime", help="Run the artifact(s) on this runner instead of their default (e.g. ort-web)."
)


@with_config(ArtifactSpec, **SPEC_OPTIONS)
@with_config(DataConfig, param="data_options")
@with_device
def validate_command(
    artifact: Path = typer.Argument(
        ..., help="Artifact to check: .onnx, engine, .mlpackage, web export folder or checkpoint."
    ),
    reference: Path = REFERENCE,
    data: str = DATA,
    split: str = SPLIT,
    limit: int = LIMIT,
    max_top1_drop: float = typer.Option(
        None, "--max-top1-drop", help="Gate: largest allowed top-1 drop in points [default 1.0]."
    ),
    min_agreement: float = typer.Option(
        None, "--min-agreement", help="Gate: smallest allowed top-1 agreement in % [default 80]."
    ),
    max_kl: float = typer.Option(
        None, "--max-kl", help="Gate: largest allowed mean KL(reference ‖ artifact) in nats [default 0.01]."
    ),
    min_cosine: float = typer.Option(
        None, "--min-cosine", help="Gate: smallest allowed mean logit cosine similarity [off]."
    ),
    junit: Path = typer.Option(
        None, "--junit", help="Write a JUnit XML report (one test case per gate).", dir_okay=False
    ),
    json_out: Path = JSON_OPTION,
    markdown: Path = typer.Option(
        None, "--markdown", help="Write a Markdown summary (e.g. for $GITHUB_STEP_SUMMARY).", dir_okay=False
    ),
    layerwise: bool = typer.Option(
        False, "--layerwise", help="INT8 ONNX: per-layer SQNR against FP32, worst layers first."
    ),
    layerwise_samples: int = typer.Option(16, "--layerwise-samples", help="Images used for --layerwise."),
    explain: int = typer.Option(
        0,
        "--explain",
        help="Add Grad-CAM panels of the N images where artifact and reference disagree most to --markdown.",
    ),
    threads: int = THREADS,
    runtime: str = RUNTIME,
    device: DeviceConfig | None = None,
    spec: ArtifactSpec | None = None,
    data_options: DataConfig | None = None,
) -> None:
    """Check that an exported artifact still gives the reference's answers (exit 0 pass, 1 gate failed, 2 bad input).

    Runs the artifact on its own runtime (with its manifest's preprocessing) and the FP32 reference in
    torch on the same images; reports accuracy, agreement, KL, logit errors, per-class deltas and a
    confidence interval for the drop. With --device, the artifact's predictions come from the device.
    An .onnx/.mlpackage without a manifest needs its input spec (--input-spec-from CKPT, or --mean/--std).

    Examples:
      edgeattn validate exported/mvit_int8.onnx --reference mvit.pt --data builtin:digits --junit drift.xml
      edgeattn validate exported/mvit_int8.onnx --reference mvit.pt --device ssh://nvidia@jetson.local
      edgeattn validate their_model.onnx --reference mvit.pt --input-spec-from mvit.pt
    """
    from rich.markup import escape

    from edgeattn.errors import GateFailure
    from edgeattn.validate import validate_artifact
    from edgeattn.validate.reports import (
        CONSOLE_LAYER_COLUMNS,
        console_layer_rows,
        gate_rows,
        interval_line,
        metric_rows,
        worse_class_rows,
    )

    if layerwise_samples < 1:
        from edgeattn.errors import InputError

        raise InputError(
            f"--layerwise-samples {layerwise_samples} must be at least 1", "give a positive number"
        )
    report = validate_artifact(
        artifact,
        reference,
        data,
        gates=_gates(max_top1_drop, min_agreement, max_kl, min_cosine),
        junit=junit,
        json_out=json_out,
        markdown=markdown,
        layerwise=layerwise,
        split=split,
        limit=limit,
        layerwise_samples=layerwise_samples,
        threads=threads,
        runtime=runtime,
        device=device,
        spec=spec,
        explain=explain,
        data_options=data_options,
    )
    info = report.artifact_info
    print_table(
        escape(
            f"{artifact.name} on {info.get('runtime')} vs {reference.name} — {data} [{split}], {report.metrics.n} images"
        ),
        ["metric", "reference", "artifact", "Δ"],
        metric_rows(report),
    )
    out.print(escape(interval_line(report)))
    if report.device is not None:
        out.print(escape(f"artifact measured on: {report.measured_on}"), soft_wrap=True)
    worse = worse_class_rows(report, 5)
    if worse:
        print_table(
            "classes that got worse", ["class", "images", "ref top-1 %", "artifact top-1 %", "Δ pp"], worse
        )
    for w in report.warnings:
        out.print(f"[yellow]warning:[/] {escape(w)}")
    if report.layerwise is not None:
        lw = report.layerwise
        title = f"layers by the quantization error they add ({lw.samples} inputs, worst first; all in --json)"
        print_table(title, CONSOLE_LAYER_COLUMNS, console_layer_rows(lw))
        for note in lw.notes:
            out.print(f"note: {escape(note)}")
    if report.explanation is not None:
        ex = report.explanation
        out.print(escape(f"heat maps of {len(ex['images'])} images: {ex['folder']}"))
        if ex.get("note"):
            out.print(f"[yellow]note:[/] {escape(ex['note'])}")
    print_table("gates", ["gate", "measured", "allowed", "result"], gate_rows(report))
    if not report.passed:
        raise GateFailure(
            "; ".join(g.message for g in report.failed),
            "see the report (--junit/--json/--markdown) for details",
        )
    out.print("[green]all gates passed[/]")


@with_config(ArtifactSpec, **SPEC_OPTIONS)
@with_config(DataConfig, param="data_options")
@with_device
def compare_command(
    artifacts: list[Path] = typer.Argument(
        ..., help="Artifacts of one model: .onnx, engines, .mlpackage, web export folders, checkpoints."
    ),
    reference: Path = REFERENCE,
    data: str = DATA,
    split: str = SPLIT,
    limit: int = LIMIT,
    markdown: Path = typer.Option(
        None, "--markdown", help="Also write the table as Markdown.", dir_okay=False
    ),
    json_out: Path = JSON_OPTION,
    threads: int = THREADS,
    runtime: str = RUNTIME,
    device: DeviceConfig | None = None,
    spec: ArtifactSpec | None = None,
    data_options: DataConfig | None = None,
) -> None:
    """Compare several artifacts of one model against its reference in one table.

    Artifacts without a manifest (.onnx/.mlpackage edgeattn did not export) take their input spec from
    --input-spec-from CKPT or --mean/--std; artifacts with a manifest keep their own.

    Examples:
      edgeattn compare m_fp32.onnx m_int8.onnx m.mlpackage --reference m.pt --data builtin:digits
      edgeattn compare m_fp32.onnx their_model.onnx --reference m.pt --input-spec-from m.pt
    """
    from edgeattn.fileio import check_writable, write_text
    from edgeattn.validate import compare_artifacts
    from edgeattn.validate.compare import COLUMNS, table_rows, to_markdown

    for path in (markdown, json_out):
        if path is not None:
            check_writable(path)
    report = compare_artifacts(
        artifacts,
        reference,
        data,
        split=split,
        limit=limit,
        threads=threads,
        runtime=runtime,
        device=device,
        spec=spec,
        data_options=data_options,
    )
    from rich.markup import escape

    title = escape(f"{len(artifacts)} artifacts vs {reference.name} — {data} [{split}], {report.n} images")
    print_table(title, COLUMNS, [[escape(c) for c in row] for row in table_rows(report)])
    if report.device is not None:
        from edgeattn.device.facts import summary

        out.print(escape(f"artifacts measured on: {summary(report.device)}"), soft_wrap=True)
    if markdown is not None:
        write_text(markdown, to_markdown(report))
    emit_json(report.to_dict(), json_out)
