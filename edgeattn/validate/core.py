"""`validate_artifact`: run an exported artifact on its own runtime and the reference in torch on the
same images, measure the drift, check the gates, write the reports.

The artifact goes through its runner (`open_runner`), which reads the manifest and applies the
manifest's preprocessing — so a manifest with the wrong normalisation shows up as drift, exactly as it
would on the device. With a `device`, the artifact's predictions come from the device (its agent
preprocesses the same way) and the reference still runs here in torch. Everything that would make the
comparison meaningless (class count, input size, data set) is checked before any inference and
reported as bad input (exit 2).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeattn.byo import ArtifactSpec, artifact_manifest
from edgeattn.data import load_split
from edgeattn.data.config import DataConfig
from edgeattn.device import DeviceConfig, open_device
from edgeattn.errors import InputError
from edgeattn.evaluation.artifact import check_data_fits
from edgeattn.evaluation.predict import stream_runner
from edgeattn.fileio import check_writable
from edgeattn.manifest import ArtifactManifest
from edgeattn.runtime import Runner, open_runner
from edgeattn.validate.gates import GateResult, Gates, check_gates
from edgeattn.validate.metrics import DriftMetrics, drift_metrics

if TYPE_CHECKING:
    from edgeattn.data.imageset import ImageSet
    from edgeattn.data.stream import FileSet
    from edgeattn.validate.layerwise import LayerwiseReport


@dataclass
class ValidationReport:
    artifact: str
    reference: str
    data: str
    split: str
    artifact_info: dict[str, Any]
    reference_info: dict[str, Any]
    metrics: DriftMetrics
    gates: list[GateResult]
    warnings: list[str] = field(default_factory=list)
    layerwise: LayerwiseReport | None = None  # when asked for
    seconds: float = 0.0
    device: dict[str, Any] | None = None  # where the artifact ran, when not here (`device check`'s facts)
    explanation: dict[str, Any] | None = None  # --explain: heat-map panels of the worst images
    # (images, reference logits, artifact logits) the metrics came from; not serialised
    evidence: tuple[Any, np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "edgeattn.validation",
            "passed": self.passed,
            "artifact": self.artifact,
            "reference": self.reference,
            "data": self.data,
            "split": self.split,
            "artifact_info": self.artifact_info,
            "reference_info": self.reference_info,
            "metrics": self.metrics.to_dict(),
            "gates": [g.to_dict() for g in self.gates],
            "warnings": list(self.warnings),
            "layerwise": self.layerwise.to_dict() if self.layerwise is not None else None,
            "seconds": round(self.seconds, 2),
            **({"device": self.device} if self.device is not None else {}),
            **({"explanation": self.explanation} if self.explanation is not None else {}),
        }

    @property
    def measured_on(self) -> str:
        from edgeattn.device.facts import summary

        return summary(self.device) if self.device is not None else "local (this machine)"


def runner_info(runner: Runner, path: Path) -> dict[str, Any]:
    manifest = getattr(runner, "manifest", None)
    info = {
        "path": str(path),
        **runner.info(),
        "num_classes": runner.num_classes,
        "input_size": list(runner.input_spec.size),
        "preprocessing": {
            k: v for k, v in runner.input_spec.to_dict().items() if k not in ("size", "channels", "layout")
        },
        "image_input": bool(runner.image_input),
    }
    if manifest is not None:
        name = manifest.model.get("name")  # none for an artifact edgeattn did not export
        info.update(
            target=manifest.target, model=name, sha256=manifest.sha256, source_kind=manifest.source_kind
        )
    handle = getattr(runner, "handle", None)
    if handle is not None:
        info.update(model=handle.config.name, checkpoint_kind=handle.kind)
    return info


def check_compatible(
    artifact: Runner, reference: Runner, artifact_path: Path, reference_path: Path
) -> list[str]:
    """Refuse comparisons that cannot mean anything; return warnings for ones that may surprise."""
    if artifact.num_classes != reference.num_classes:
        raise InputError(
            f"{artifact_path.name} predicts {artifact.num_classes} classes but the reference {reference_path.name} predicts {reference.num_classes}",
            "validate the artifact against the checkpoint it was exported from",
        )
    if tuple(artifact.input_spec.size) != tuple(reference.input_spec.size):
        a, r = artifact.input_spec.size, reference.input_spec.size
        raise InputError(
            f"{artifact_path.name} takes {a[0]}x{a[1]} inputs but the reference {reference_path.name} takes {r[0]}x{r[1]}",
            "validate the artifact against the checkpoint it was exported from (or re-export at the reference's size)",
        )
    warnings = []
    a_spec, r_spec = artifact.input_spec, reference.input_spec
    for name in ("mean", "std", "interpolation", "crop_pct"):
        av, rv = getattr(a_spec, name), getattr(r_spec, name)
        same = np.allclose(av, rv, atol=1e-6) if not isinstance(av, str) else av == rv
        if not same:
            warnings.append(
                f"the artifact's input spec preprocesses with {name}={av}, the reference with {rv}: expect drift from that alone"
            )
    a_model = runner_info(artifact, artifact_path).get("model")
    r_model = runner_info(reference, reference_path).get("model")
    if a_model and r_model and a_model != r_model:
        warnings.append(f"the artifact was exported from {a_model}, the reference is {r_model}")
    return warnings


def open_reference(reference: Path, threads: int | None = None) -> Runner:
    if not Path(reference).exists():
        raise InputError(
            f"reference {reference} does not exist", "give the FP32 checkpoint the artifact was exported from"
        )
    return open_runner(reference, threads=threads)


def load_eval_set(
    data: str,
    split: str,
    reference: Runner,
    reference_path: Path,
    limit: int | None,
    options: DataConfig | None = None,
) -> ImageSet | FileSet:
    if limit is not None and limit < 1:
        raise InputError(f"--limit {limit} must be at least 1", "give a positive number of images")
    dataset = load_split(data, split, reference.input_spec.size[0], options).subset(limit)
    check_data_fits(reference.num_classes, dataset.num_classes, reference_path, data)
    return dataset


def validate_artifact(
    artifact: Path,
    reference: Path,
    data: str,
    *,
    gates: Gates | None = None,
    junit: Path | None = None,
    json_out: Path | None = None,
    markdown: Path | None = None,
    layerwise: bool = False,
    split: str = "val",
    limit: int | None = None,
    layerwise_samples: int = 16,
    layerwise_verify: int = 3,
    threads: int | None = None,
    runtime: str | None = None,
    device: DeviceConfig | str | None = None,
    device_label: str | None = None,
    spec: ArtifactSpec | None = None,
    explain: int = 0,
    data_options: DataConfig | None = None,
) -> ValidationReport:
    """Compare `artifact` (any runnable kind, on `runtime` or its own) with `reference` (the FP32
    checkpoint) on `data`; `spec` is the input spec of an artifact without a manifest (`edgeattn.byo`).

    `device` (a `DeviceConfig` or URL, default local) is where the artifact runs; `device_label` is
    its name in reports. Reports go to the given paths (written even when a gate fails); the caller
    decides what a failed gate means (the CLI exits 1). `explain` N adds heat-map panels of the N
    images where artifact and reference disagree most to the Markdown report (beside it, in
    `<markdown stem>_explain/`). `data_options` say how images are read (workers, class map).
    """
    from edgeattn.validate.reports import write_reports

    start = time.perf_counter()
    artifact, reference = Path(artifact), Path(reference)
    gates = gates or Gates()
    for out in (junit, json_out, markdown):
        if out is not None:
            check_writable(Path(out))
    if explain < 0 or (explain and markdown is None):
        raise InputError(
            f"--explain {explain} needs a Markdown report to put the pictures in",
            "add --markdown FILE (and a count of at least 1)",
        )
    manifest = artifact_manifest(artifact, spec)
    with open_device(device, label=device_label) as dev:  # reached only when the artifact is opened
        report = _validate_on(
            dev,
            artifact,
            reference,
            data,
            gates,
            layerwise,
            split,
            limit,
            layerwise_samples,
            layerwise_verify,
            threads,
            runtime,
            manifest,
            data_options,
        )
    if explain and report.evidence is not None:
        from edgeattn.explain.drift import explain_drift

        dataset, ref_logits, art_logits = report.evidence
        folder = Path(markdown).with_name(f"{Path(markdown).stem}_explain")
        report.explanation = explain_drift(
            artifact, reference, dataset, ref_logits, art_logits, explain, folder, dataset.classes
        )
    report.seconds = time.perf_counter() - start
    write_reports(report, json_out=json_out, markdown=markdown, junit=junit)
    return report


def _validate_on(
    dev: Any,
    artifact: Path,
    reference: Path,
    data: str,
    gates: Gates,
    layerwise: bool,
    split: str,
    limit: int | None,
    layerwise_samples: int,
    layerwise_verify: int,
    threads: int | None,
    runtime: str | None,
    manifest: ArtifactManifest | None,
    data_options: DataConfig | None = None,
) -> ValidationReport:
    ref_runner = open_reference(reference, threads)
    try:
        art_runner = dev.open_runner(artifact, runtime, threads=threads, manifest=manifest)
        try:
            warnings = check_compatible(art_runner, ref_runner, artifact, reference)
            if layerwise:
                _check_layerwise_input(artifact, art_runner)
            dataset = load_eval_set(data, split, ref_runner, reference, limit, data_options)
            ref_logits = stream_runner(ref_runner, dataset, f"reference {reference.name}").logits
            report = measure(
                art_runner, artifact, ref_logits, runner_info(ref_runner, reference), dataset, gates, warnings
            )
            report.reference, report.data, report.split = str(reference), data, split
            if layerwise:
                report.layerwise = _layerwise(
                    artifact, reference, art_runner, ref_runner, dataset, layerwise_samples, layerwise_verify
                )
                if not dev.in_process:
                    report.warnings.append(
                        "the per-layer drift was computed on this machine (onnxruntime here); the metrics above on the device"
                    )
            if not dev.in_process:
                report.device = dev.block()
        finally:
            art_runner.close()
    finally:
        ref_runner.close()
    return report


def measure(
    art_runner: Runner,
    artifact: Path,
    ref_logits: np.ndarray,
    ref_info: dict[str, Any],
    dataset: ImageSet | FileSet,
    gates: Gates,
    warnings: list[str],
) -> ValidationReport:
    """Run one opened artifact on the data set (streamed; the same images the reference saw) and
    compare it with the reference's logits."""
    art_logits = stream_runner(art_runner, dataset, f"artifact {artifact.name}").logits
    metrics = drift_metrics(ref_logits, art_logits, dataset.labels.numpy(), dataset.classes)
    report = ValidationReport(
        artifact=str(artifact),
        reference=str(ref_info.get("path", "")),
        data=dataset.source,
        split=dataset.split,
        artifact_info=runner_info(art_runner, artifact),
        reference_info=ref_info,
        metrics=metrics,
        gates=check_gates(metrics, gates),
        warnings=warnings,
    )
    report.evidence = (dataset, np.asarray(ref_logits), np.asarray(art_logits))
    return report


def _check_layerwise_input(artifact: Path, runner: Runner) -> None:
    if artifact.suffix.lower() != ".onnx" or runner.precision not in ("int8", "int8-weights"):
        raise InputError(
            f"--layerwise compares the INT8 tensors of a QDQ ONNX model with FP32, and {artifact.name} is a {runner.precision} {artifact.suffix or 'artifact'}",
            "run --layerwise on the INT8 .onnx (e.g. from `edgeattn export --precision int8`)",
        )


def _traced_reference(handle: Any, path: Path) -> Path | None:
    """The reference exported the way `edgeattn export` does (TorchScript exporter, constant folding),
    only to read its weights: BatchNorm folded into convolutions the same way lets the FP32 originals
    of those quantized weights be found. None when the model does not export."""
    from edgeattn.onnx.torch_export import torch_to_onnx

    try:
        torch_to_onnx(
            handle.module,
            path,
            input_shape=handle.input_spec.shape(1),
            opset=17,
            input_name=None,  # only the weights are read: the exporter's default names do
            output_name=None,
        )
    except Exception:  # noqa: BLE001  best effort: without it, folded weights compare at dequantized values
        return None
    return path


def _layerwise(
    artifact: Path,
    reference: Path,
    art_runner: Runner,
    ref_runner: Runner,
    dataset: ImageSet | FileSet,
    samples: int,
    verify: int,
) -> Any:
    from edgeattn.onnx.weights import reference_weights
    from edgeattn.validate.layerwise import layerwise_drift

    handle = getattr(ref_runner, "handle", None)
    state = handle.module.state_dict() if handle is not None else None
    if reference.suffix.lower() == ".onnx":
        weights = reference_weights(fp32_onnx=reference, state_dict=state)
    else:
        with tempfile.TemporaryDirectory(prefix="edgeattn-layerwise-") as tmp:
            traced = _traced_reference(handle, Path(tmp) / "reference.onnx") if handle is not None else None
            weights = reference_weights(fp32_onnx=traced, state_dict=state)
    inputs = art_runner.prepare(dataset.subset(samples, seed=1).pixels(art_runner.input_spec))
    return layerwise_drift(artifact, inputs, weights=weights, verify_top=verify)
