"""Which runtime measures which artifact, and whether this machine can measure that runtime's speed.

`--runtime auto` serves each artifact on the runtime of its kind (checkpoint -> torch eager, .onnx ->
onnxruntime, .engine -> TensorRT, .mlpackage -> Core ML). A runtime that cannot give a real speed here
is reported as skipped with the reason instead of a number (each runner says why: TensorRT needs the
tensorrt package and a CUDA GPU; Core ML's speed exists only on macOS, where on Linux the reference
executor runs .mlpackage files to check accuracy only). Everything here is read off `RUNNERS`.
"""

from __future__ import annotations

from pathlib import Path

from edgeattn.errors import InputError
from edgeattn.runtime import RUNNERS, artifact_kind


def runtime_choices() -> tuple[str, ...]:
    return ("auto", *RUNNERS.names())


def resolve_runtime(artifact: Path, requested: str) -> str:
    """The runtime that will serve `artifact` (InputError when the requested one cannot load it)."""
    choices = runtime_choices()
    if requested not in choices:
        raise InputError(f"unknown runtime {requested!r}", f"use one of: {', '.join(choices)}")
    kind = artifact_kind(artifact)
    if requested == "auto":
        return kind
    if kind not in RUNNERS.get(requested).kinds_served():
        able = [name for name, runner in RUNNERS.items() if kind in runner.kinds_served()]
        raise InputError(
            f"--runtime {requested} cannot run {artifact.name} (a {kind} artifact)",
            f"use --runtime auto or {'/'.join(able)}, or export the model for {requested}",
        )
    return requested


def unavailable_reason(runtime: str) -> str | None:
    return RUNNERS.get(runtime).speed_unavailable_reason()
