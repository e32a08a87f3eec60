"""The environment a benchmark ran in, captured with every result.

Latency numbers are only comparable on the same CPU, core count, thread setting and runtime versions,
so every report carries them (and the load average, because a busy machine inflates the tail). The
SIMD flags matter most for INT8: without VNNI/AMX (x86) or dot-product (ARM) instructions, int8 GEMMs
gain little over FP32 and the Q/DQ conversions can make INT8 slower.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import time
from pathlib import Path
from typing import Any

from edgeattn.device import agent

# The SIMD flags and the CPU parser are the device agent's (one implementation for here and devices).
SIMD_FLAGS, INT8_DOT_FLAGS = agent.SIMD_FLAGS, agent.INT8_DOT_FLAGS


def cpu_info(cpuinfo_text: str | None = None) -> dict[str, Any]:
    """CPU model, SIMD flags and core counts (Linux: /proc/cpuinfo; macOS: sysctl; else platform)."""
    return agent.cpu_facts(cpuinfo_text)


def memory_total_mb() -> float | None:
    return agent.memory_facts()[0]


def runtime_versions() -> dict[str, str]:
    from edgeattn.manifest import library_versions

    return library_versions("numpy", "timm", "nncf", "coremltools", "tensorrt", "openvino")


def ort_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def capture_environment(
    threads: int, pin: bool = False, settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Everything needed to tell whether two benchmark results may be compared."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu_busy_other_pct": other_cpu_busy_pct(),
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_info(),
        "memory_mb": memory_total_mb(),
        "threads": threads,
        "pinned": pin,
        "load_average_start": [round(v, 2) for v in load] if load else None,
        "onnxruntime_providers": ort_providers(),
        "versions": runtime_versions(),
        "settings": dict(settings or {}),
    }


def other_cpu_busy_pct(seconds: float = 0.5) -> float | None:
    """Share of all CPU time used by other processes over a short window while this one sleeps (Linux).

    The load average cannot tell: it still remembers the work this very run did a minute ago (building
    the artifacts), so it flags an idle machine as busy.
    """

    def sample() -> tuple[int, int] | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]) - idle, sum(fields[:8])

    first = sample()
    if first is None:
        return None
    time.sleep(seconds)
    second = sample()
    if second is None or second[1] == first[1]:
        return None
    return round(100.0 * (second[0] - first[0]) / (second[1] - first[1]), 1)


def busy_warning(env: dict[str, Any]) -> str | None:
    """A warning when the machine was busy: other work competes for the cores and inflates latency."""
    busy = env.get("cpu_busy_other_pct")
    if busy is not None:
        if busy > 25.0:
            return f"other processes used {busy:.0f} % of the CPU just before timing: numbers are pessimistic"
        return None
    load = env.get("load_average_start")
    cores = env.get("cpu", {}).get("usable_cores") or 1
    if load and load[0] > cores * 0.75:
        return f"load average {load[0]:.1f} on {cores} usable cores at start: other work competed for the CPU, numbers are pessimistic"
    return None
