"""Timing one artifact the way the runtimes' own tools do (onnxruntime_perf_test, trtexec, benchmark_app).

Per artifact: open it on its runner (model load time), then per batch size: one first inference (timed
separately: it includes lazy initialisation), `warmup` untimed runs, then either `iters` timed runs or
as many as fit in `seconds` (at least `min_iters`). Each run is timed on its own with a monotonic
clock (or the runner's device timer, e.g. CUDA events for TensorRT), and the samples are summarised as
median, mean, p90, p99, min, max and standard deviation; throughput is batch / mean latency.

Memory: peak resident set size of the process (VmHWM) and how much of it the artifact added (RSS after
load minus RSS before). Both are meaningful per artifact only when each artifact runs in a fresh
process, which `edgeattn.bench.worker` provides.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeattn.bench.config import BenchConfig
from edgeattn.bench.timers import Timer, timer_for, wallclock_timer


def latency_stats(samples_ms: list[float] | np.ndarray, batch: int) -> dict[str, float]:
    """Summary of per-run latencies (ms); percentiles by linear interpolation, as numpy computes them."""
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no samples")
    mean = float(a.mean())
    return {
        "iterations": int(a.size),
        "median_ms": float(np.median(a)),
        "mean_ms": mean,
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "min_ms": float(a.min()),
        "max_ms": float(a.max()),
        "std_ms": float(a.std(ddof=1)) if a.size > 1 else 0.0,
        "throughput_ips": batch * 1000.0 / mean if mean > 0 else math.inf,
        "total_s": float(a.sum() / 1000.0),
    }


def time_runs(fn: Callable[[], Any], settings: BenchConfig, timer: Timer = wallclock_timer) -> list[float]:
    """Warm up, then collect per-run latencies for `iters` runs or for `seconds` (≥ min_iters runs)."""
    for _ in range(settings.warmup):
        fn()
    samples: list[float] = []
    if settings.seconds is not None:
        deadline = time.perf_counter() + settings.seconds
        while len(samples) < settings.min_iters or time.perf_counter() < deadline:
            samples.append(timer(fn))
    else:
        samples = [timer(fn) for _ in range(settings.timed_runs)]
    return samples


# ---------------------------------------------------------------------------------------------- memory
def _status_kb(field_name: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024


def peak_rss_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


# ------------------------------------------------------------------------------------------- one artifact
def random_images(batch: int, height: int, width: int, seed: int) -> Any:
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8, generator=g)


def artifact_facts(runner: Any) -> dict[str, Any]:
    """Model config, metrics and provenance, from the artifact's manifest or checkpoint."""
    manifest = getattr(runner, "manifest", None)
    handle = getattr(runner, "handle", None)
    if manifest is not None:
        return {
            "model": manifest.model,
            "metrics": manifest.metrics,
            "format": manifest.target,
            "sha256": manifest.sha256,
            "source_kind": manifest.source_kind,
            "history": [h.get("step") for h in manifest.history],
        }
    if handle is not None:
        return {
            "model": handle.config.to_dict(),
            "metrics": handle.metrics,
            "format": "checkpoint",
            "sha256": "",
            "source_kind": handle.kind,
            "history": [h.get("step") for h in handle.history],
        }
    return {"model": None, "metrics": {}, "format": "", "sha256": "", "source_kind": "", "history": []}


def count_model_macs(model_cfg: dict[str, Any] | None) -> int | None:
    """MACs of the architecture the artifact was built from (FP32 equivalent; INT8 does the same MACs)."""
    if not model_cfg:
        return None
    from edgeattn.models import ModelConfig, build_model
    from edgeattn.models.profile import count_macs

    cfg = ModelConfig.from_dict(model_cfg)
    return count_macs(build_model(cfg), cfg.input_size)


def batch_unsupported(runner: Any, batch: int) -> str | None:
    """Why `runner` cannot run `batch` as one batch (static-batch artifacts, engine profiles), or None."""
    hi = runner.max_batch
    if hi is None:
        return None
    lo = getattr(runner, "min_batch", None) or hi  # ONNX: max_batch is set only for a static batch
    if lo <= batch <= hi:
        return None
    if lo == hi:
        return f"the artifact has a static batch of {hi}; export it with a dynamic batch to sweep batch sizes"
    return f"batch {batch} is outside the artifact's batch range {lo}..{hi}"


def measure_artifact(
    path: Path, runtime: str, settings: BenchConfig, manifest: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Open `path` on `runtime` and time it at every batch size of `settings`. Raises InputError /
    UnavailableError (from the runner) when the artifact is bad or its runtime is missing.
    `manifest` (a dict) stands in for the manifest of an artifact that has none (`edgeattn.byo`)."""
    from edgeattn.manifest import ArtifactManifest
    from edgeattn.runtime import open_runner

    given = ArtifactManifest(**manifest) if manifest is not None else None
    rss_before = rss_mb()
    start = time.perf_counter()
    runner = open_runner(path, runtime, manifest=given, **settings.runner_options())
    load_ms = (time.perf_counter() - start) * 1000
    rss_loaded = rss_mb()
    timer_name, timer = timer_for(runner)
    h, w = runner.input_spec.size
    batches: list[dict[str, Any]] = []
    try:
        for batch in settings.batches:
            reason = batch_unsupported(runner, batch)
            if reason:
                batches.append({"batch": batch, "status": "skipped", "reason": reason})
                continue
            x = runner.prepare(random_images(batch, h, w, settings.seed + batch))
            first_ms = wallclock_timer(lambda x=x: runner.run(x))
            samples = time_runs(lambda x=x: runner.run(x), settings, timer)
            batches.append(
                {"batch": batch, "status": "ok", "first_run_ms": first_ms, **latency_stats(samples, batch)}
            )
        peak = peak_rss_mb()
        facts = artifact_facts(runner)
        info = {"runtime": runner.runtime, "kind": runner.kind, "precision": runner.precision}
    finally:
        runner.close()
    macs = None
    if settings.macs:
        try:
            macs = count_model_macs(facts["model"])
        except Exception:  # noqa: BLE001  MACs are informative; an unbuildable config must not void the timing
            macs = None
    return {
        **info,
        **facts,
        "timer": timer_name,
        "load_ms": load_ms,
        "memory": {
            "peak_rss_mb": peak,
            "rss_before_load_mb": rss_before,
            "load_rss_mb": (rss_loaded - rss_before)
            if rss_before is not None and rss_loaded is not None
            else None,
            "run_peak_over_baseline_mb": (peak - rss_before) if rss_before is not None else None,
        },
        "macs": macs,
        "batches": batches,
        "pid": os.getpid(),
    }
