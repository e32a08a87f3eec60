"""Timing on a device: the device's agent runs the warm-up and the timed runs there (so latency is the
device's, not the network's) and returns what `harness.measure_artifact` returns here, so the rows,
reports and plots are the same; the environment is the device's (its CPU, SIMD flags, runtimes).

Each artifact gets a fresh agent process on the device (its own peak memory and thread pools), like
the fresh worker process per artifact here.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeattn.bench.config import BenchConfig
from edgeattn.bench.harness import artifact_facts, count_model_macs

if TYPE_CHECKING:
    from edgeattn.device import Device


def agent_settings(settings: BenchConfig) -> dict[str, Any]:
    """The timing settings the agent reads (the same meaning as here)."""
    return {
        "batches": list(settings.batches),
        "warmup": settings.warmup,
        "iters": settings.timed_runs,
        "seconds": settings.seconds,
        "min_iters": settings.min_iters,
        "seed": settings.seed,
    }


def measure_on_device(device: Device, path: Path, runtime: str, settings: BenchConfig) -> dict[str, Any]:
    """Open `path` on the device's agent and time it at every batch size of `settings`."""
    from edgeattn.device.runner import RemoteRunner

    runner = RemoteRunner(device, path, runtime, pin=settings.pin, **settings.runner_options())
    try:
        timed = runner.bench(agent_settings(settings))
        facts = artifact_facts(runner)
        info = {"runtime": runner.runtime, "kind": runner.kind, "precision": runner.precision}
        pinned = runner.session.pinned_cpus if runner.session is not None else None
        pid = runner.session.pid if runner.session is not None else None
    finally:
        runner.close()
    macs = None
    if settings.macs:
        try:
            macs = count_model_macs(facts["model"])
        except Exception:  # noqa: BLE001  informative only, as in the local harness
            macs = None
    before, loaded, peak = runner.rss["before"], runner.rss["loaded"], timed.get("peak_rss_mb")
    return {
        **info,
        **facts,
        "timer": timed["timer"],
        "load_ms": runner.load_ms,
        "memory": {
            "peak_rss_mb": peak,
            "rss_before_load_mb": before,
            "load_rss_mb": (loaded - before) if before is not None and loaded is not None else None,
            "run_peak_over_baseline_mb": (peak - before) if before is not None and peak is not None else None,
        },
        "macs": macs,
        "batches": timed["batches"],
        "pid": pid,
        "pinned_cpus": pinned,
        "device": device.name,
    }


def device_environment(device: Device, settings: BenchConfig) -> dict[str, Any]:
    """`capture_environment`'s fields, read on the device (its CPU, memory, load, runtimes)."""
    block = device.block(busy=True)
    runtimes = block.get("runtimes", {})
    versions = {
        name: r["version"] for name, r in runtimes.items() if r.get("importable") and r.get("version")
    }
    load = block.get("load_average")
    return {
        "cpu_busy_other_pct": block.get("cpu_busy_other_pct"),
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host": block.get("host"),
        "os": block.get("os"),
        "python": block.get("python"),
        "cpu": block.get("cpu", {}),
        "memory_mb": block.get("memory_mb"),
        "threads": settings.threads,
        "pinned": settings.pin,
        "load_average_start": load,
        "onnxruntime_providers": (runtimes.get("onnxruntime") or {}).get("providers", []),
        "versions": {"python": block.get("python"), **versions},
        "settings": settings.model_dump(mode="json"),
        "device": device.name,
    }
