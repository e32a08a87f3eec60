"""`bench_artifacts`: measure several artifacts in one run and compare them with a baseline.

Every artifact is checked before any timing starts (a missing, corrupt or unrecognised artifact fails
the run at once with one clear line, exit 2), then measured in its own fresh process (see worker.py),
one after another so that two measurements never compete for the cores. Artifacts whose runtime
cannot run here (TensorRT without GPU, Core ML off macOS) become "skipped" entries with the reason.
With a `device`, the device's agent times each artifact there in a fresh process of its own
(`remote.py`); a device that cannot (unreachable, no runtime, killed) is one error, exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgeattn.bench.config import BenchConfig
from edgeattn.bench.env import busy_warning, capture_environment
from edgeattn.bench.harness import measure_artifact
from edgeattn.bench.report import BenchReport, BenchRow, Skipped
from edgeattn.bench.runtimes import resolve_runtime, unavailable_reason
from edgeattn.byo import ArtifactSpec, artifact_manifest
from edgeattn.device import Device, DeviceConfig, open_device
from edgeattn.errors import InputError, UnavailableError
from edgeattn.manifest import ArtifactManifest
from edgeattn.runtime import RUNNERS


def accuracy_from_metrics(metrics: Mapping[str, Any] | None) -> float | None:
    """top-1 (%) from a manifest's or checkpoint's metrics, whichever common shape it has."""
    if not metrics:
        return None
    for candidate in (
        metrics.get("top1"),
        (metrics.get("val") or {}).get("top1") if isinstance(metrics.get("val"), dict) else None,
        (metrics.get("accuracy") or {}).get("top1")
        if isinstance(metrics.get("accuracy"), dict)
        else metrics.get("accuracy"),
    ):
        if isinstance(candidate, int | float):
            return float(candidate)
    return None


def preflight(path: Path, runtime: str, manifest: ArtifactManifest | None = None) -> str:
    """Fail before any timing when an artifact is missing or corrupt; returns the runtime to use.
    An artifact with an assumed `manifest` was read when its graph was inspected."""
    if not path.exists():
        raise InputError(f"artifact {path} does not exist", "check the path")
    rt = resolve_runtime(path, runtime)
    if manifest is None:
        RUNNERS.get(rt).preflight(path)
    return rt


def _labels(paths: list[Path], labels: Mapping[Path | str, str] | None) -> dict[Path, str]:
    given = {Path(k): v for k, v in (labels or {}).items()}
    names = [p.name for p in paths]
    return {p: given.get(p) or (p.name if names.count(p.name) == 1 else str(p)) for p in paths}


def _run_isolated(
    path: Path,
    runtime: str,
    settings: BenchConfig,
    timeout_s: float | None,
    manifest: ArtifactManifest | None = None,
) -> dict[str, Any]:
    import edgeattn

    with tempfile.TemporaryDirectory(prefix="edgeattn-bench-") as tmp:
        req, res = Path(tmp) / "request.json", Path(tmp) / "result.json"
        req.write_text(
            json.dumps(
                {
                    "artifact": str(path.resolve()),
                    "runtime": runtime,
                    "settings": settings.model_dump(mode="json"),
                    "manifest": manifest.to_dict() if manifest is not None else None,
                }
            )
        )
        env = dict(
            os.environ,
            EDGEATTN_QUIET="1",
            OMP_NUM_THREADS=str(settings.threads),
            MKL_NUM_THREADS=str(settings.threads),
        )
        root = str(Path(edgeattn.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "edgeattn.bench.worker", str(req), str(res)],
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise InputError(
                f"measuring {path.name} took longer than {timeout_s:.0f} s",
                "use fewer --iters / a shorter --seconds",
            ) from None
        if not res.exists():
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-1:] or ["no output"]
            raise InputError(
                f"the benchmark process for {path.name} died (exit {proc.returncode}: {tail[0][:200]})",
                "check that the artifact runs (`edgeattn eval`/`validate`); a negative exit is a signal such as out-of-memory",
            )
        return json.loads(res.read_text())


def _run_inline(
    path: Path, runtime: str, settings: BenchConfig, manifest: ArtifactManifest | None = None
) -> dict[str, Any]:
    from edgeattn.errors import EdgeAttnError

    given = manifest.to_dict() if manifest is not None else None
    try:
        return {"ok": True, "result": measure_artifact(path, runtime, settings, given)}
    except UnavailableError as exc:
        return {"ok": False, "error": {"kind": "unavailable", "problem": exc.problem, "fix": exc.fix}}
    except EdgeAttnError:
        raise


def _raise_error(path: Path, error: dict[str, Any]) -> None:
    if error["kind"] == "input":
        raise InputError(error["problem"], error.get("fix"))
    raise InputError(
        f"measuring {path.name} failed ({error['problem'][:300]})",
        "check that the artifact runs (`edgeattn eval`/`validate`); report the traceback in the JSON if it does",
    )


def default_baseline(rows: list[BenchRow]) -> str | None:
    """The first FP32 artifact measured (the one a user deploys without edgeattn), else the first."""
    for r in rows:
        if r.precision == "fp32":
            return r.artifact
    return rows[0].artifact if rows else None


def apply_baseline(rows: list[BenchRow], baseline_artifact: str | None) -> None:
    base = {r.batch: r for r in rows if r.artifact == baseline_artifact}
    for r in rows:
        b = base.get(r.batch)
        r.is_baseline = r.artifact == baseline_artifact
        if b is not None and r.median_ms > 0 and b.median_ms > 0:
            r.speedup = b.median_ms / r.median_ms
            r.latency_ratio = r.median_ms / b.median_ms


def bench_artifacts(
    artifacts: list[Path],
    config: BenchConfig | None = None,
    *,
    baseline: Path | None = None,
    labels: Mapping[Path | str, str] | None = None,
    extras: Mapping[Path | str, Mapping[str, Any]] | None = None,
    title: str = "edgeattn bench",
    notes: list[str] | None = None,
    timeout_s: float | None = None,
    device: DeviceConfig | str | None = None,
    device_label: str | None = None,
    spec: ArtifactSpec | None = None,
    **overrides: Any,
) -> BenchReport:
    """Measure every artifact at every batch size and compare each with the baseline.

    `config` (default `BenchConfig()`) with any of its fields replaced by `overrides` (e.g.
    `batches=[1, 8], threads=1`). `isolate=True` runs each artifact in a fresh process (per-artifact
    peak RSS, no shared thread pools); `extras[path]` may give `top1` (and `accuracy_note`, `macs`)
    the artifact's own manifest does not carry. `device` (a `DeviceConfig` or URL; default local)
    is where the artifacts run and are timed (`device_label`: its name in reports). An .onnx or
    .mlpackage without a manifest is timed on random inputs of its graph's shape (`spec`, when given,
    sets its input size and preprocessing; see `edgeattn.byo`). Returns a
    `BenchReport` (rows, skipped entries with reasons, environment, the device).
    """
    settings = BenchConfig.build(config, **overrides)
    with open_device(device, label=device_label) as dev:
        return _bench(dev, artifacts, settings, baseline, labels, extras, title, notes, timeout_s, spec)


def _bench(
    dev: Device,
    artifacts: list[Path],
    settings: BenchConfig,
    baseline: Path | None,
    labels: Mapping[Path | str, str] | None,
    extras: Mapping[Path | str, Mapping[str, Any]] | None,
    title: str,
    notes: list[str] | None,
    timeout_s: float | None,
    spec: ArtifactSpec | None = None,
) -> BenchReport:
    runtime, threads, pin, isolate = settings.runtime, settings.threads, settings.pin, settings.isolate
    paths = [Path(a) for a in artifacts]
    if baseline is not None and Path(baseline) not in paths:
        paths.insert(0, Path(baseline))
    if not paths:
        raise InputError(
            "no artifact to benchmark", "give one or more artifacts (.pt, .onnx, .engine, .mlpackage)"
        )
    dupes = sorted({str(p) for p in paths if paths.count(p) > 1})
    if dupes:
        raise InputError(f"artifact given twice: {', '.join(dupes)}", "list each artifact once")
    assumed = {
        p: artifact_manifest(p, spec, need_preprocessing=False, refuse_unused=False)
        for p in paths
        if p.exists()
    }
    byo = [p.name for p, m in assumed.items() if m is not None]
    if byo and not dev.in_process:
        raise InputError(
            f"{', '.join(byo)} {'has' if len(byo) == 1 else 'have'} no manifest, and devices run only artifacts with one",
            "export the model with `edgeattn export` (which writes the manifest), or bench it here",
        )
    runtimes = {p: preflight(p, runtime, assumed.get(p)) for p in paths}
    names = _labels(paths, labels)
    extra = {Path(k): dict(v) for k, v in (extras or {}).items()}
    report = BenchReport(
        env={}, settings=settings.model_dump(mode="json"), title=title, notes=list(notes or [])
    )
    if dev.in_process:
        env = capture_environment(threads, pin, settings.model_dump(mode="json"))
    else:
        from edgeattn.bench.remote import device_environment

        for path, rt in runtimes.items():
            dev.check_kind(rt, path)  # a checkpoint or .mlpackage fails before anything is copied
        env = device_environment(dev, settings)
        dev.require_numpy()
        report.device = dev.block()
        isolate = True  # the agent process per artifact is fresh on the device
    report.env = env
    if not isolate:
        report.notes.append("all artifacts ran in one process: peak RSS accumulates over the artifacts")
    usable = env["cpu"].get("usable_cores") or 1
    if threads > usable:
        report.notes.append(
            f"{threads} threads on {usable} usable cores: the runtimes' thread pools are oversubscribed"
        )

    from edgeattn.progress import make_progress

    with make_progress() as progress:
        task = progress.add_task(title, total=len(paths), status="")
        for path in paths:
            rt = runtimes[path]
            progress.update(task, status=f"{names[path]} on {rt}")
            reason = unavailable_reason(rt) if dev.in_process else None
            if reason:
                report.skipped.append(Skipped(str(path), names[path], rt, reason))
                progress.advance(task)
                continue
            if not dev.in_process:
                from edgeattn.bench.remote import measure_on_device

                response = {"ok": True, "result": measure_on_device(dev, path, rt, settings)}
            elif isolate:
                response = _run_isolated(path, rt, settings, timeout_s, assumed.get(path))
            else:
                response = _run_inline(path, rt, settings, assumed.get(path))
            if not response["ok"]:
                error = response["error"]
                if error["kind"] != "unavailable":
                    _raise_error(path, error)
                reason = error["problem"] + (f" ({error['fix']})" if error.get("fix") else "")
                report.skipped.append(Skipped(str(path), names[path], rt, reason))
            else:
                report.rows += _rows(path, names[path], rt, response["result"], extra.get(path, {}), report)
            progress.advance(task)

    base = str(Path(baseline)) if baseline is not None else default_baseline(report.rows)
    if baseline is not None and not any(r.artifact == base for r in report.rows):
        report.notes.append(
            f"the baseline {Path(baseline).name} was not measured here, so no ratios are given"
        )
    apply_baseline(report.rows, base)
    report.baseline = names.get(Path(base)) if base else None
    load = os.getloadavg() if hasattr(os, "getloadavg") and dev.in_process else None
    env["load_average_end"] = [round(v, 2) for v in load] if load else None
    warning = busy_warning(env)
    if warning:
        report.notes.append(warning)
    return report


def _rows(
    path: Path, label: str, rt: str, result: dict[str, Any], extra: dict[str, Any], report: BenchReport
) -> list[BenchRow]:
    rows = []
    top1 = extra.get("top1", accuracy_from_metrics(result.get("metrics")))
    for b in result["batches"]:
        if b["status"] != "ok":
            report.skipped.append(Skipped(str(path), label, rt, b["reason"], batch=b["batch"]))
            continue
        rows.append(
            BenchRow(
                artifact=str(path),
                label=label,
                runtime=result["runtime"],
                runtime_kind=rt,
                precision=result["precision"],
                batch=b["batch"],
                median_ms=b["median_ms"],
                mean_ms=b["mean_ms"],
                p90_ms=b["p90_ms"],
                p99_ms=b["p99_ms"],
                min_ms=b["min_ms"],
                max_ms=b["max_ms"],
                std_ms=b["std_ms"],
                throughput_ips=b["throughput_ips"],
                iterations=b["iterations"],
                first_run_ms=b["first_run_ms"],
                load_ms=result["load_ms"],
                peak_rss_mb=result["memory"]["peak_rss_mb"],
                load_rss_mb=result["memory"]["load_rss_mb"],
                macs=extra.get("macs", result.get("macs")),
                top1=top1,
                accuracy_note=extra.get("accuracy_note", ""),
                timer=result.get("timer", ""),
                pinned_cpus=result.get("pinned_cpus"),
                format=result.get("format", ""),
                sha256=result.get("sha256", ""),
                source_kind=result.get("source_kind", ""),
                history=list(result.get("history", [])),
                device=result.get("device", "local"),
            )
        )
    return rows
