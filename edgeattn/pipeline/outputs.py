"""What a run leaves for people and CI: manifest.json (every artifact with hash, precision, target,
accuracy, drift, latency; versions; the recipe), report.md with plots, and junit.xml."""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import platform
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from edgeattn.fileio import sha256_of, write_json, write_text
from edgeattn.pipeline.state import RunState

RUN_FORMAT = "edgeattn.run"
VERSION_PACKAGES = (
    "timm",
    "nncf",
    "torchao",
    "coremltools",
    "onnxslim",
    "onnxscript",
    "openvino",
    "tensorrt",
    "numpy",
    "pydantic",
)


def _finite(obj: Any) -> Any:
    """NaN/inf -> None, so manifest.json is strict JSON that every CI tool parses."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def artifact_entry(state: RunState, art) -> dict[str, Any]:
    """One artifact's row of the manifest: identity, accuracy, drift, gates and latency."""
    v = art.validation or {}
    m = v.get("metrics", {})
    entry: dict[str, Any] = {
        "id": art.id,
        "path": state.rel(art.path),
        "manifest": state.rel(art.path.with_name(art.path.name + ".json")),
        "sha256": art.sha256,
        "size_bytes": art.size_bytes,
        "target": art.target,
        "precision": art.precision,
        "source_checkpoint": art.source,
        "runtime_details": art.manifest.get("details", {}),
        "accuracy": None,
        "drift": None,
        "gates": None,
        "latency": [
            {
                k: row.get(k)
                for k in (
                    "runtime",
                    "runtime_kind",
                    "batch",
                    "median_ms",
                    "p90_ms",
                    "p99_ms",
                    "throughput_ips",
                    "speedup",
                    "peak_rss_mb",
                )
            }
            for row in art.latency
        ],
    }
    if v:
        entry["accuracy"] = {
            "top1": m.get("artifact_top1"),
            "top5": m.get("artifact_top5"),
            "reference_top1": m.get("reference_top1"),
            "n": m.get("n"),
        }
        entry["drift"] = {
            k: m.get(k)
            for k in (
                "top1_drop",
                "top5_drop",
                "agreement",
                "kl",
                "cosine",
                "min_cosine",
                "max_abs_logit_error",
                "mean_abs_logit_error",
            )
        }
        entry["drift"]["reference"] = v.get("reference")
        layerwise = v.get("layerwise") or {}
        if layerwise:
            entry["drift"]["output_sqnr_db"] = layerwise.get("output_sqnr_db")
            entry["drift"]["worst_layers"] = [layer.get("node") for layer in layerwise.get("layers", [])[:5]]
        entry["gates"] = {"passed": v.get("passed"), "results": v.get("gates", [])}
        entry["validation_report"] = state.rel(state.stage_dir("validate") / art.id / "report.json")
    return entry


def gate_failures(state: RunState) -> list[dict[str, Any]]:
    out = []
    for art in state.artifacts.values():
        for gate in (art.validation or {}).get("gates", []):
            if not gate.get("passed", True):
                out.append({"artifact": art.id, "gate": gate.get("name"), "message": gate.get("message", "")})
    return out


def build_manifest(state: RunState, seconds: float, failure: Exception | None) -> dict[str, Any]:
    from edgeattn.manifest import library_versions

    loaded = state.loaded
    failures = gate_failures(state)
    status = "failed" if failure is not None else ("gates_failed" if failures else "passed")
    checkpoints = []
    for c in state.checkpoints.values():
        checkpoints.append(
            {
                "name": c.name,
                "path": state.rel(c.path),
                "sha256": sha256_of(c.path) if c.path.exists() else "",
                "kind": c.kind,
                "source": c.source,
                "accuracy": c.accuracy,
                "params": c.params,
                "macs": c.macs,
                **({"method": c.method, "placement": c.placement} if c.method else {}),
            }
        )
    prune = None
    if state.prune_report:
        p = state.prune_report
        prune = {
            k: p.get(k)
            for k in ("importance", "scope", "target", "heads", "params", "macs", "top1", "heads_kept")
        }
        prune["report"] = state.rel(state.stage_dir("prune") / "report" / "prune_report.md")
    return _finite(
        {
            "format": RUN_FORMAT,
            "format_version": 1,
            "name": loaded.name,
            "status": status,
            "failure": failure.one_line() if failure is not None and hasattr(failure, "one_line") else None,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "seconds": round(seconds, 1),
            "recipe": {
                "file": str(loaded.file),
                "sha256": hashlib.sha256(loaded.text.encode()).hexdigest(),
                "text": loaded.text,
                "resolved": loaded.recipe.to_dict(),
            },
            "versions": library_versions(*VERSION_PACKAGES),
            "platform": {
                "system": platform.system(),
                "release": platform.release(),
                "machine": platform.machine(),
                "processor": platform.processor(),
            },
            "steps": [
                {
                    "id": s.id,
                    "stage": s.stage,
                    "status": s.status,
                    "seconds": round(s.seconds, 2),
                    "reason": s.reason,
                    "key": s.key,
                }
                for s in state.steps
            ],
            "checkpoints": checkpoints,
            "prune": prune,
            "artifacts": [artifact_entry(state, a) for a in state.artifacts.values()],
            "skipped": list(state.skipped),
            "gates": {"passed": not failures, "failed": failures},
            "files": {"report": "report.md", "junit": "junit.xml"},
        }
    )


# -------------------------------------------------------------------------------------------- JUnit
def junit_xml(state: RunState, manifest: dict[str, Any]) -> str:
    """One test suite for the pipeline's steps, one per validated artifact (a test case per gate)."""
    suites = ET.Element("testsuites", name=f"edgeattn run {state.loaded.name}")
    steps = ET.SubElement(suites, "testsuite", name=f"{state.loaded.name}.pipeline")
    n_fail = n_skip = 0
    for s in manifest["steps"]:
        case = ET.SubElement(
            steps,
            "testcase",
            classname=f"{state.loaded.name}.pipeline",
            name=s["id"],
            time=f"{s['seconds']:.2f}",
        )
        if s["status"] == "skipped":
            ET.SubElement(case, "skipped", message=s["reason"])
            n_skip += 1
        elif s["status"] == "failed":
            ET.SubElement(case, "failure", message=s["reason"], type="StepFailed").text = s["reason"]
            n_fail += 1
    steps.set("tests", str(len(manifest["steps"])))
    steps.set("failures", str(n_fail))
    steps.set("skipped", str(n_skip))
    steps.set("errors", "0")
    for art in manifest["artifacts"]:
        gates = (art.get("gates") or {}).get("results", [])
        suite = ET.SubElement(suites, "testsuite", name=f"{state.loaded.name}.validate.{art['id']}")
        failures = 0
        for g in gates:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"{state.loaded.name}.validate.{art['id']}",
                name=str(g.get("name")),
            )
            if not g.get("passed", True):
                ET.SubElement(case, "failure", message=g.get("message", ""), type="GateFailure").text = g.get(
                    "message", ""
                )
                failures += 1
            else:
                ET.SubElement(case, "system-out").text = g.get("message", "")
        suite.set("tests", str(len(gates)))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        suite.set("skipped", "0")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_outputs(state: RunState, seconds: float, failure: Exception | None = None):
    """Write manifest.json, junit.xml and report.md (with plots); return the `RunResult`."""
    from edgeattn.pipeline.report import write_report
    from edgeattn.pipeline.runner import RunResult

    manifest = build_manifest(state, seconds, failure)
    root = state.root
    write_json(root / "manifest.json", manifest)
    write_text(root / "junit.xml", junit_xml(state, manifest))
    write_report(state, manifest, root / "report.md")
    return RunResult(
        name=state.loaded.name,
        root=root,
        manifest=root / "manifest.json",
        report=root / "report.md",
        junit=root / "junit.xml",
        steps=list(state.steps),
        skipped=list(state.skipped),
        gate_failures=manifest["gates"]["failed"],
        artifacts=manifest["artifacts"],
        seconds=seconds,
    )


def relpath(path: Path, start: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(start).resolve()))
    except ValueError:
        return str(path)
