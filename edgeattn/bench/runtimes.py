"""Which runtime measures which artifact, and whether this machine can measure that runtime's speed.

`--runtime auto` serves each artifact on the runtime of its kind (checkpoint -> torch eager, .onnx ->
onnxruntime, .engine -> TensorRT, .mlpackage -> Core ML). A runtime that cannot give a real speed here
is reported as skipped with the reason instead of a number: TensorRT needs the tensorrt package and a
CUDA GPU; Core ML's speed exists only on macOS (on Linux the reference executor runs .mlpackage files
to check accuracy, and its speed says nothing about Core ML's).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from edgeattn.errors import InputError
from edgeattn.registry import Registry
from edgeattn.runtime.base import artifact_kind

RUNTIME_CHOICES = ("auto", "onnxruntime", "tensorrt", "coreml", "torch")

# runtime -> a check returning None when its speed can be measured here, else the reason why not.
SpeedCheck = Callable[[], str | None]
SPEED_CHECKS: Registry[SpeedCheck] = Registry("benchmark runtime")

# artifact kind -> runtimes that can serve it.
SERVES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "onnxruntime": ("onnxruntime",),
    "tensorrt": ("tensorrt",),
    "coreml": ("coreml",),
}


@SPEED_CHECKS.register("torch")
def _torch() -> str | None:
    return None


@SPEED_CHECKS.register("onnxruntime")
def _onnxruntime() -> str | None:
    return (
        None
        if importlib.util.find_spec("onnxruntime")
        else "onnxruntime is not installed (pip install onnxruntime)"
    )


@SPEED_CHECKS.register("tensorrt")
def _tensorrt() -> str | None:
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed here (it needs an NVIDIA GPU machine: pip install 'edgeattn[tensorrt]')"
    try:
        import torch

        if not torch.cuda.is_available():
            return "no CUDA GPU here: a TensorRT engine can only be timed on the GPU it was built for"
    except ImportError:  # pragma: no cover
        pass
    return None


@SPEED_CHECKS.register("coreml")
def _coreml() -> str | None:
    if sys.platform != "darwin":
        return "Core ML runs only on macOS; on Linux the reference executor measures accuracy, not Core ML's speed"
    return None


def resolve_runtime(artifact: Path, requested: str) -> str:
    """The runtime that will serve `artifact` (InputError when the requested one cannot load it)."""
    if requested not in RUNTIME_CHOICES:
        raise InputError(f"unknown runtime {requested!r}", f"use one of: {', '.join(RUNTIME_CHOICES)}")
    kind = artifact_kind(artifact)
    if requested == "auto":
        return kind
    if requested not in SERVES[kind]:
        raise InputError(
            f"--runtime {requested} cannot run {artifact.name} (a {kind} artifact)",
            f"use --runtime auto or {'/'.join(SERVES[kind])}, or export the model for {requested}",
        )
    return requested


def unavailable_reason(runtime: str) -> str | None:
    return SPEED_CHECKS.get(runtime)()
