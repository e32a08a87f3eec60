"""Measures one artifact in a fresh process: `python -m edgeattn.bench.worker REQUEST.json RESULT.json`.

A fresh process per artifact keeps the measurements independent: peak RSS belongs to that artifact
alone, one runtime's thread pools and caches cannot slow the next, and thread counts / CPU pinning are
set before any runtime starts its threads. The result (or the error, as problem + fix) goes to
RESULT.json; the parent turns errors back into the same exceptions.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def configure_process(threads: int, pin: bool) -> list[int] | None:
    """Fix the thread count for every runtime, and optionally pin to the first `threads` usable CPUs."""
    for var in THREAD_ENV:
        os.environ[var] = str(threads)
    if pin and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:threads]
        os.sched_setaffinity(0, cpus)
        return cpus
    return None


def run_request(request: dict[str, Any]) -> dict[str, Any]:
    from edgeattn.bench.config import BenchConfig
    from edgeattn.bench.harness import measure_artifact
    from edgeattn.errors import EdgeAttnError, UnavailableError

    settings = BenchConfig.model_validate(request["settings"])
    pinned = configure_process(settings.threads, settings.pin)
    try:
        import torch

        torch.set_num_threads(settings.threads)
        result = measure_artifact(
            Path(request["artifact"]), request["runtime"], settings, request.get("manifest")
        )
        result["pinned_cpus"] = pinned
        return {"ok": True, "result": result}
    except EdgeAttnError as exc:
        kind = "unavailable" if isinstance(exc, UnavailableError) else "input"
        return {"ok": False, "error": {"kind": kind, "problem": exc.problem, "fix": exc.fix}}
    except Exception as exc:  # noqa: BLE001  reported to the parent, which decides how to fail
        return {
            "ok": False,
            "error": {
                "kind": "internal",
                "problem": f"{type(exc).__name__}: {exc}",
                "fix": None,
                "traceback": traceback.format_exc(),
            },
        }


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text())
    response = run_request(request)
    Path(argv[1]).write_text(json.dumps(response, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
