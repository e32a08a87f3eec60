"""What a run leaves for people and CI: manifest.json (every artifact with hash, precision, target,
accuracy, drift, latency — each number with the device it was measured on; the devices' facts;
versions; the recipe), report.md with plots, and junit.xml."""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import platform
from pathlib import Path
from typing import Any

from edgeattn.fileio import sha256_of, write_json, write_text
from edgeattn.pipeline.state import RunResult, RunState
from edgeattn.reporting import JUnitCase, JUnitSuite
from edgeattn.reporting import junit_xml as write_junit

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


def device_of(report: dict[str, Any] | None) -> str:
    """The device a validation or bench report was measured on (its recipe name), `local` for here."""
    block = (report or {}).get("device") or {}
    return block.get("label") or block.get("name") or "local"


def validation_entry(state: RunState, art, device: str, v: dict[str, Any]) -> dict[str, Any]:
    m = v.get("metrics", {})
    suffix = "" if device == "local" else f"@{device}"
    return {
        "device": device,
        "passed": v.get("passed"),
        "runtime": (v.get("artifact_info") or {}).get("runtime"),
        "top1": m.get("artifact_top1"),
        "top1_drop": m.get("top1_drop"),
        "agreement": m.get("agreement"),
        "kl": m.get("kl"),
        "gates": v.get("gates", []),
        "report": state.rel(state.stage_dir("validate") / f"{art.id}{suffix}" / "report.json"),
    }


def artifact_entry(state: RunState, art) -> dict[str, Any]:
    """One artifact's row of the manifest: identity, accuracy, drift, gates and latency, each with the
    device it was measured on."""
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
                    "device",
                )
            }
            for row in art.latency
        ],
        "validations": [validation_entry(state, art, d, report) for d, report in art.validations.items()],
    }
    if v:
        entry["accuracy"] = {
            "top1": m.get("artifact_top1"),
            "top5": m.get("artifact_top5"),
            "reference_top1": m.get("reference_top1"),
            "n": m.get("n"),
            "device": device_of(v),
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
        entry["drift"]["device"] = device_of(v)
        layerwise = v.get("layerwise") or {}
        if layerwise:
            entry["drift"]["output_sqnr_db"] = layerwise.get("output_sqnr_db")
            entry["drift"]["worst_layers"] = [layer.get("node") for layer in layerwise.get("layers", [])[:5]]
        entry["gates"] = {
            "passed": all(r.get("passed") for r in art.validations.values())
            if art.validations
            else v.get("passed"),
            "results": v.get("gates", []),
            "device": device_of(v),
        }
        entry["validation_report"] = entry["validations"][0]["report"] if entry["validations"] else None
    return entry


def gate_failures(state: RunState) -> list[dict[str, Any]]:
    out = []
    for art in state.artifacts.values():
        reports = art.validations or ({"local": art.validation} if art.validation else {})
        for device, report in reports.items():
            for gate in report.get("gates", []):
                if not gate.get("passed", True):
                    out.append({"artifact": art.id, "gate": gate.get("name"), "message": gate.get("message", ""),
                                "device": device})  # fmt: skip
    return out


def devices_entry(state: RunState) -> dict[str, Any]:
    """Every device a number was measured on: `local` (this machine) and each remote one's facts."""
    from edgeattn.device.facts import summary

    used = (
        {"local"}
        if any(row.get("device", "local") == "local" for a in state.artifacts.values() for row in a.latency)
        or any("local" in a.validations for a in state.artifacts.values())
        else set()
    )
    out: dict[str, Any] = {}
    if used:
        from edgeattn.device.agent import cpu_facts

        here = {
            "name": "local",
            "cpu": cpu_facts(),
            "system": platform.system(),
            "python": platform.python_version(),
        }
        out["local"] = {"url": "local", "summary": f"this machine — {summary(here).removeprefix('local: ')}"}
    for name, block in state.devices.items():
        out[name] = {"url": block.get("url"), "summary": summary(block), "facts": block}
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
        prune = p.model_dump(
            mode="json",
            include={"importance", "scope", "target", "heads", "params", "macs", "top1", "heads_kept"},
        )
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
            "devices": devices_entry(state),
            "skipped": list(state.skipped),
            "gates": {"passed": not failures, "failed": failures},
            "files": {"report": "report.md", "junit": "junit.xml"},
        }
    )


# -------------------------------------------------------------------------------------------- JUnit
def junit_xml(state: RunState, manifest: dict[str, Any]) -> str:
    """One test suite for the pipeline's steps, one per validated artifact (a test case per gate)."""
    name = state.loaded.name
    steps = [
        JUnitCase(
            s["id"],
            f"{name}.pipeline",
            failure_message=s["reason"] if s["status"] == "failed" else None,
            failure_text=s["reason"] if s["status"] == "failed" else None,
            skipped=s["reason"] if s["status"] == "skipped" else None,
            time=s["seconds"],
            failure_type="StepFailed",
        )
        for s in manifest["steps"]
    ]
    suites = [JUnitSuite(f"{name}.pipeline", steps)]
    for art in manifest["artifacts"]:
        for v in art.get("validations", []):
            device = v["device"]
            suite = f"{name}.validate.{art['id']}" + ("" if device == "local" else f"@{device}")
            cases = []
            for g in v.get("gates", []):
                message = g.get("message", "")
                if g.get("passed", True):
                    cases.append(JUnitCase(str(g.get("name")), suite, system_out=message))
                else:
                    cases.append(
                        JUnitCase(str(g.get("name")), suite, message, message, failure_type="GateFailure")
                    )
            where = (manifest.get("devices", {}).get(device) or {}).get("summary", device)
            suites.append(JUnitSuite(suite, cases, {"device": where, "runtime": v.get("runtime") or ""}))
    return write_junit(suites, f"edgeattn run {name}", manifest["seconds"])


def write_outputs(state: RunState, seconds: float, failure: Exception | None = None):
    """Write manifest.json, junit.xml and report.md (with plots); return the `RunResult`."""
    from edgeattn.pipeline.report import write_report

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
