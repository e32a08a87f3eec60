"""`edgeattn export`: a checkpoint (FP32, pruned or quantized) -> ONNX / TensorRT engine / Core ML package.

The target-specific flags (`--workspace-mib`, `--coreml-input`, ...) are not written here: each
exporter declares its options (`Exporter.options`), and this command grows one flag per declared
option, refusing a flag on a target that does not declare it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from edgeattn.cli.common import JSON_OPTION, OUT_HELP, emit_json, print_table
from edgeattn.cli.common import out as console
from edgeattn.cli.options import with_config
from edgeattn.export import EXPORTERS, TargetOption
from edgeattn.export.config import ExportConfig


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)


def parse_batch_range(text: str | None) -> tuple[int, int, int] | None:
    from edgeattn.export import parse_dynamic_batch

    return parse_dynamic_batch(text) if text else None


def with_target_options(command: Callable[..., None]) -> Callable[..., None]:
    """`command` with one more CLI option per declared exporter option; the values given (not None)
    reach it as `target_options`."""
    declared = flagged_options()
    extra = [
        inspect.Parameter(
            key,
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(None, option.flag, help=option.help),
            annotation=option.type,
        )
        for key, (option, _) in declared.items()
    ]

    @functools.wraps(command)
    def wrapper(**values: Any) -> None:
        options = {k: values.pop(k) for k in declared if k in values}
        given = {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items() if v is not None}
        command(**values, target_options=given)

    signature = inspect.signature(command, eval_str=True)
    params = [p for p in signature.parameters.values() if p.name != "target_options"]
    wrapper.__signature__ = signature.replace(parameters=[*params, *extra])  # type: ignore[attr-defined]
    return wrapper


def flagged_options() -> dict[str, tuple[TargetOption, tuple[str, ...]]]:
    """Option key -> (its declaration, the targets that declare it), for options that have a flag."""
    found: dict[str, tuple[TargetOption, tuple[str, ...]]] = {}
    for name, exporter in EXPORTERS.items():
        for option in exporter.options:
            if option.flag is None:
                continue
            known, targets = found.get(option.key, (option, ()))
            if known.flag != option.flag:
                raise ValueError(f"option {option.key!r} has two flags: {known.flag}, {option.flag}")
            found[option.key] = (known, (*targets, name))
    return found


@with_target_options
@with_config(
    ExportConfig,
    flags={"precision": ("--precision", "-p")},
    exclude=("options",),
    parsers={"dynamic_batch": (str, parse_batch_range)},
)
def export_command(
    checkpoint: Path = typer.Argument(
        ..., help="Checkpoint to export (.pt: FP32, pruned, or quantized by `edgeattn quantize`)."
    ),
    target: str = typer.Option(..., "--target", "-t", help=f"{', '.join(EXPORTERS.names())}."),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help=f"Artifact path ({', '.join('/'.join(s or 'a folder' for s in e.suffixes) for _, e in EXPORTERS.items())}). {OUT_HELP}",
    ),
    data: str = typer.Option(
        None, "--data", help="Data set for calibration where needed (Core ML int8 activations)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing artifact."),
    json_out: Path = JSON_OPTION,
    config: ExportConfig | None = None,
    target_options: dict[str, Any] | None = None,
) -> None:
    """Export a checkpoint to a deployable artifact with a manifest beside it (PATH.json).

    Examples:
      edgeattn export mvit.pt --target onnx --dynamic-batch 1:8:32 --out exported/mvit.onnx
      edgeattn export mvit-int8.pt --target onnx --precision int8 --out exported/mvit-int8.onnx
      edgeattn export mvit.pt --target tensorrt --precision fp16 --out exported/mvit.engine
      edgeattn export mvit.pt --target coreml --precision int8-weights --out exported/mvit.mlpackage
      edgeattn export mvit.pt --target web --out exported/site   # a static site: see `edgeattn web`
    """
    from edgeattn.export import export_artifact, exporter_for

    exporter_for(target)  # unknown target: the registry's "did you mean" error first
    given = dict(target_options or {})
    reject_foreign_options(target, given)
    config = ExportConfig.build(config, options=given)
    manifest = export_artifact(checkpoint, target, out, config, data=data, overwrite=overwrite)
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


def reject_foreign_options(target: str, given: dict[str, Any]) -> None:
    """`--workspace-mib` on `--target onnx` is an error rather than silently ignored."""
    from edgeattn.errors import InputError

    declared = flagged_options()
    for key in given:
        option, targets = declared[key]
        if target not in targets:
            raise InputError(
                f"{option.flag.split('/')[0]} does not apply to --target {target}",
                f"it is for --target {' / '.join(targets)}",
            )
