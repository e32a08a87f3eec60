"""Export a checkpoint to a deployable artifact (ONNX, TensorRT engine, Core ML package) + manifest.

`export_artifact` validates the whole request (target, precision, batch, opset, output paths) before
any slow work, then hands it to the target's exporter from `EXPORTERS`. The registry (`base.py`)
imports no exporter; this package imports each exporter module, which registers itself, so adding a
target is adding one module. Exporter modules import their heavy runtimes (onnxruntime, tensorrt,
coremltools) lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeattn.checkpoint import ModelHandle, load_checkpoint
from edgeattn.errors import InputError
from edgeattn.export import coreml, onnx, tensorrt, web  # noqa: F401  (each registers its exporter)
from edgeattn.export.base import (
    EXPORTERS,
    QUANTIZED_KIND,
    BatchSpec,
    Exporter,
    ExportRequest,
    TargetOption,
    parse_dynamic_batch,
)
from edgeattn.export.config import ExportConfig, ExportShape
from edgeattn.fileio import check_writable
from edgeattn.manifest import ArtifactManifest, manifest_path

__all__ = [
    "EXPORTERS",
    "BatchSpec",
    "ExportConfig",
    "ExportRequest",
    "ExportShape",
    "Exporter",
    "TargetOption",
    "export_artifact",
    "exporter_for",
    "parse_dynamic_batch",
    "target_precisions",
]


def exporter_for(target: str) -> Exporter:
    return EXPORTERS.get(target)


def target_precisions() -> dict[str, tuple[str, ...]]:
    """Which precisions each export target can produce (from the exporters' own declarations)."""
    return {name: exporter.precisions for name, exporter in EXPORTERS.items()}


def export_artifact(
    ckpt: Path | str | ModelHandle,
    target: str,
    out: Path | str,
    config: ExportConfig | None = None,
    *,
    data: str | None = None,
    overwrite: bool = True,
    **overrides: Any,
) -> ArtifactManifest:
    """Export `ckpt` for `target`, writing `out` and its manifest `out.json` atomically.

    `config` (default `ExportConfig()`) with `overrides` applied: fields of the config
    (`precision`, `batch`, `dynamic_batch=(min, opt, max)`, `opset`) replace them, any other keyword
    is a target option (see each exporter's `options`: coreml `input="image"|"tensor"`,
    `deployment_target="iOS16"`; tensorrt `tensorrt_version`, `workspace_mib`, `timing_cache`, `fp16_io`; onnx `exporter`,
    `fp16_io`, `runtime`). `precision` defaults to the target's (onnx fp32, tensorrt fp16, coreml
    fp16; int8 for a quantized checkpoint). `data` is the data set used where an export needs real
    images (Core ML activation calibration).
    """
    exporter = exporter_for(target)
    fields = {k: v for k, v in overrides.items() if k in ExportConfig.model_fields}
    target_options = {k: v for k, v in overrides.items() if k not in ExportConfig.model_fields}
    cfg = ExportConfig.build(config, **fields)
    target_options = {**cfg.options, **target_options}
    out = Path(out)
    if out.suffix.lower() not in exporter.suffixes:
        endings = " or ".join(
            f"ending in {s}" if s else "without a suffix (a folder)" for s in exporter.suffixes
        )
        raise InputError(
            f"--out {out} does not suit target {target}",
            f"give a path {endings} (e.g. {out.with_suffix(exporter.suffixes[0]).name})",
        )
    unknown = sorted(set(target_options) - set(exporter.option_defaults))
    if unknown:
        known = ", ".join(sorted(exporter.option_defaults)) or "none"
        raise InputError(f"target {target} has no option {', '.join(unknown)}", f"its options are: {known}")
    if cfg.dynamic_batch is not None:
        batch_spec = BatchSpec.range(*cfg.dynamic_batch)
    else:
        batch_spec = BatchSpec.static(cfg.batch)

    # Cheap path checks first: a typo in --out must not cost a model load.
    _check_outputs([out, manifest_path(out)], overwrite, folder=out if exporter.writes_folder else None)
    handle, source = _handle(ckpt)
    precision = cfg.precision
    if precision is None:
        precision = (
            QUANTIZED_KIND
            if handle.kind == QUANTIZED_KIND and QUANTIZED_KIND in exporter.precisions
            else exporter.default_precision
        )
    if precision not in exporter.precisions:
        raise InputError(
            f"target {target} does not export --precision {precision}",
            f"choose one of: {', '.join(exporter.precisions)}",
        )
    req = ExportRequest(
        handle=handle,
        target=target,
        out=out,
        precision=precision,
        batch=batch_spec,
        opset=cfg.opset,
        data=data,
        source=source,
        options={**exporter.option_defaults, **target_options},
        overwrite=overwrite,
    )
    if req.opset is None:
        req.opset = exporter.default_opset(req)
    exporter.check(req)
    _check_outputs(exporter.outputs(req), overwrite, folder=out if exporter.writes_folder else None)
    return exporter.export(req)


def _handle(ckpt: Path | str | ModelHandle) -> tuple[ModelHandle, str]:
    if isinstance(ckpt, ModelHandle):
        return ckpt, ""
    path = Path(ckpt)
    return load_checkpoint(path), str(path)


def _check_outputs(paths: list[Path], overwrite: bool, folder: Path | None = None) -> None:
    """Refuse existing outputs without --overwrite, and folders where a file goes (`folder`: the one
    output that is a folder, for targets that write one)."""
    seen = set()
    for path in paths:
        if path in seen:
            continue
        seen.add(path)
        if path.exists() and not overwrite:
            raise InputError(
                f"{path} already exists", "pass --overwrite to replace it, or choose another --out"
            )
        if path.exists() and path.is_dir() and path != folder:
            raise InputError(f"{path} is a folder", "give a file path for --out")
        check_writable(path, overwrite=True, folder=path == folder)
