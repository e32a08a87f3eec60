"""The runner interface and the registry of runner kinds."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeattn.errors import InputError
from edgeattn.models.config import InputSpec
from edgeattn.registry import Registry


class Runner:
    """Runs one artifact on its runtime. Subclasses set the attributes and implement `run`."""

    runtime: str = ""  # e.g. "onnxruntime 1.32.0 (CPUExecutionProvider)"
    kind: str = ""  # registry key
    input_spec: InputSpec
    num_classes: int
    precision: str = "fp32"
    max_batch: int | None = None  # None: any batch size
    image_input: bool = False  # the artifact takes 0..255 images and normalises itself

    def run(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, classes) for a prepared float32 NCHW batch (see `prepare`)."""
        raise NotImplementedError

    def prepare(self, images: Any) -> np.ndarray:
        """uint8 (N, 3, H, W) images -> this artifact's input: resized, then normalised unless the
        artifact normalises itself (`image_input`: 0..255 RGB in)."""
        from edgeattn.data.imageset import normalize, resize_uint8

        x = resize_uint8(images, self.input_spec)
        x = x if self.image_input else normalize(x / 255.0, self.input_spec)
        return x.numpy().astype(np.float32)

    def predict(self, images: Any, batch_size: int = 64) -> np.ndarray:
        """Logits for uint8 images, in batches no larger than the artifact allows."""
        step = min(batch_size, self.max_batch or batch_size)
        outs = []
        for i in range(0, len(images), step):
            x = self.prepare(images[i : i + step])
            if self.max_batch and len(x) < self.max_batch:  # static-batch artifact: pad the last batch
                pad = np.repeat(x[-1:], self.max_batch - len(x), axis=0)
                outs.append(self.run(np.concatenate([x, pad]))[: len(x)])
            else:
                outs.append(self.run(x))
        return np.concatenate(outs) if outs else np.empty((0, self.num_classes), np.float32)

    def info(self) -> dict[str, Any]:
        return {"kind": self.kind, "runtime": self.runtime, "precision": self.precision}

    def close(self) -> None:  # noqa: B027  (optional hook)
        pass


RunnerFactory = Callable[..., Runner]
RUNNERS: Registry[RunnerFactory] = Registry("runtime")

# Which runner serves which artifact by default, by file suffix.
SUFFIX_KINDS = {
    ".pt": "torch",
    ".pth": "torch",
    ".onnx": "onnxruntime",
    ".engine": "tensorrt",
    ".plan": "tensorrt",
    ".mlpackage": "coreml",
}
_BACKEND_MODULES = {
    "torch": "edgeattn.runtime.torch_runner",
    "onnxruntime": "edgeattn.runtime.ort_runner",
    "tensorrt": "edgeattn.runtime.trt_runner",
    "coreml": "edgeattn.runtime.coreml_runner",
}


def artifact_kind(path: Path | str) -> str:
    path = Path(path)
    kind = SUFFIX_KINDS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"cannot tell what kind of artifact {path} is", f"use one of: {', '.join(sorted(SUFFIX_KINDS))}"
        )
    return kind


def _ensure_backend(kind: str) -> None:
    module = _BACKEND_MODULES.get(kind)
    if module and kind not in RUNNERS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise


def open_runner(path: Path | str, runtime: str | None = None, **options: Any) -> Runner:
    """Open `path` on `runtime` (default: the runtime its kind is served by)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"artifact {path} does not exist", "check the path")
    kind = runtime or artifact_kind(path)
    _ensure_backend(kind)
    if kind in _BACKEND_MODULES and kind not in RUNNERS:
        from edgeattn.errors import UnavailableError

        raise UnavailableError(
            f"{path.name} is a {kind} artifact, and this installation has no {kind} runner, so it cannot run here",
            f"run it on a machine with {kind} support, or validate the ONNX it was built from",
        )
    return RUNNERS.get(kind)(path, **options)
