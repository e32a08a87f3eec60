"""`compare_artifacts`: several artifacts of one model (fp32 onnx, int8 onnx, Core ML fp16, ...) against
one reference, in one table.

The reference runs once and every artifact is opened and checked before any inference, so a wrong
file fails in seconds, not after minutes of work. An artifact whose runtime this machine lacks
(TensorRT engine without a GPU, Core ML without its runner) becomes a row that says why it was skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeattn.byo import ArtifactSpec, artifact_manifest
from edgeattn.data.config import DataConfig
from edgeattn.device import Device, DeviceConfig, open_device
from edgeattn.errors import InputError, UnavailableError
from edgeattn.evaluation import topk_hits
from edgeattn.evaluation.predict import stream_runner
from edgeattn.manifest import ArtifactManifest
from edgeattn.reporting import md_table
from edgeattn.validate.core import (
    ValidationReport,
    check_compatible,
    load_eval_set,
    measure,
    open_reference,
    runner_info,
)
from edgeattn.validate.gates import Gates


@dataclass
class CompareRow:
    artifact: str
    report: ValidationReport | None = None
    skipped: str | None = None  # why it could not run here

    def to_dict(self) -> dict[str, Any]:
        if self.report is None:
            return {"artifact": self.artifact, "skipped": self.skipped}
        r = self.report
        return {
            "artifact": self.artifact,
            "runtime": r.artifact_info.get("runtime"),
            "precision": r.artifact_info.get("precision"),
            "passed": r.passed,
            "metrics": {k: v for k, v in r.metrics.to_dict().items() if k != "classes"},
            "gates": [g.to_dict() for g in r.gates],
            "warnings": r.warnings,
        }


@dataclass
class CompareReport:
    reference: str
    data: str
    split: str
    n: int
    reference_info: dict[str, Any]
    reference_top1: float
    reference_top5: float
    rows: list[CompareRow] = field(default_factory=list)
    seconds: float = 0.0
    device: dict[str, Any] | None = None  # where the artifacts ran, when not here

    def to_dict(self) -> dict[str, Any]:
        return {
            **({"device": self.device} if self.device is not None else {}),
            "format": "edgeattn.compare",
            "reference": self.reference,
            "data": self.data,
            "split": self.split,
            "images": self.n,
            "reference_info": self.reference_info,
            "reference_top1": self.reference_top1,
            "reference_top5": self.reference_top5,
            "rows": [r.to_dict() for r in self.rows],
            "seconds": round(self.seconds, 2),
        }


COLUMNS = [
    "artifact",
    "runtime",
    "precision",
    "top-1 %",
    "top-5 %",
    "Δ top-1 pp",
    "95% CI pp",
    "agree %",
    "KL",
    "max |Δ|",
    "cosine",
    "gates",
]


def table_rows(report: CompareReport) -> list[list[str]]:
    rows = [[Path(report.reference).name + " (reference)", report.reference_info.get("runtime", ""), report.reference_info.get("precision", ""),
             f"{report.reference_top1:.2f}", f"{report.reference_top5:.2f}", "", "", "", "", "", "", ""]]  # fmt: skip
    for row in report.rows:
        if row.report is None:
            rows.append([Path(row.artifact).name, f"skipped: {row.skipped}", *[""] * (len(COLUMNS) - 2)])
            continue
        m = row.report.metrics
        ci = m.drop_interval
        rows.append(
            [
                Path(row.artifact).name,
                row.report.artifact_info.get("runtime", ""),
                row.report.artifact_info.get("precision", ""),
                f"{m.artifact_top1:.2f}",
                f"{m.artifact_top5:.2f}",
                f"{-m.top1_drop:+.2f}",
                f"[{-ci.high:+.2f}, {-ci.low:+.2f}]",
                f"{m.agreement:.2f}",
                f"{m.kl:.4f}",
                f"{m.max_abs_logit_error:.3f}",
                f"{m.cosine:.5f}",
                "pass" if row.report.passed else "FAIL: " + ", ".join(g.name for g in row.report.failed),
            ]
        )
    return rows


def to_markdown(report: CompareReport) -> str:
    from edgeattn.device.facts import summary

    head = f"### edgeattn compare — reference `{report.reference}`, data `{report.data}` [{report.split}], {report.n} images\n\n"
    where = (
        f"Artifacts measured on: {summary(report.device) if report.device else 'local (this machine)'}.\n\n"
    )
    return head + where + md_table(COLUMNS, table_rows(report)) + "\n"


def compare_artifacts(
    artifacts: list[Path],
    reference: Path,
    data: str,
    *,
    split: str = "val",
    limit: int | None = None,
    gates: Gates | None = None,
    threads: int | None = None,
    runtime: str | None = None,
    device: DeviceConfig | str | None = None,
    device_label: str | None = None,
    spec: ArtifactSpec | None = None,
    data_options: DataConfig | None = None,
) -> CompareReport:
    """One reference run, then every artifact on `runtime` (default: its own), on `device` (default
    local); Δ columns are artifact minus reference. `spec` is the input spec of the artifacts without
    a manifest (`edgeattn.byo`); artifacts with their own spec ignore it. `data_options` say how
    images are read (workers, class map, bad files)."""
    if not artifacts:
        raise InputError(
            "no artifacts to compare",
            "name one or more artifacts: edgeattn compare A.onnx B.onnx --reference CKPT",
        )
    manifests = [(Path(p), artifact_manifest(p, spec, refuse_unused=False)) for p in artifacts]
    with open_device(device, label=device_label) as dev:
        return _compare_on(
            dev, manifests, Path(reference), data, split, limit, gates, threads, runtime, data_options
        )


def _compare_on(
    dev: Device,
    artifacts: list[tuple[Path, ArtifactManifest | None]],
    reference: Path,
    data: str,
    split: str,
    limit: int | None,
    gates: Gates | None,
    threads: int | None,
    runtime: str | None,
    data_options: DataConfig | None = None,
) -> CompareReport:
    start = time.perf_counter()
    reference = Path(reference)
    gates = gates or Gates()
    ref_runner = open_reference(reference, threads)
    opened: list[tuple[Path, Any, str | None, list[str]]] = []
    try:
        for path, manifest in artifacts:
            try:
                runner = dev.open_runner(path, runtime, threads=threads, manifest=manifest)
            except UnavailableError as exc:
                opened.append((path, None, exc.one_line(), []))
                continue
            opened.append((path, runner, None, check_compatible(runner, ref_runner, path, reference)))
        dataset = load_eval_set(data, split, ref_runner, reference, limit, data_options)
        ref_logits = stream_runner(ref_runner, dataset, f"reference {reference.name}").logits
        ref_info = runner_info(ref_runner, reference)

        labels = dataset.labels.numpy()
        out = CompareReport(
            reference=str(reference),
            data=data,
            split=split,
            n=len(dataset),
            reference_info=ref_info,
            reference_top1=100.0 * float(topk_hits(ref_logits, labels, 1).mean()),
            reference_top5=100.0 * float(topk_hits(ref_logits, labels, 5).mean()),
        )
        for path, runner, skipped, warnings in opened:
            if runner is None:
                out.rows.append(CompareRow(str(path), skipped=skipped))
                continue
            report = measure(runner, path, ref_logits, ref_info, dataset, gates, warnings)
            report.reference, report.data, report.split = str(reference), data, split
            out.rows.append(CompareRow(str(path), report=report))
        if not dev.in_process:
            out.device = dev.block()
    finally:
        for _, runner, _, _ in opened:
            if runner is not None:
                runner.close()
        ref_runner.close()
    out.seconds = time.perf_counter() - start
    return out
