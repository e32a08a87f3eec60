"""Runs a Core ML .mlpackage: with Core ML itself (`MLModel.predict`) on macOS, and with edgeattn's
reference executor of ML Programs (`edgeattn.runtime.coreml_ref`) everywhere else.

Core ML exists only on Apple platforms, but most CI runs on Linux; the reference executor lets a
Linux CI gate a Core ML export's accuracy on the program that will ship. `runtime` says which one
ran ("Core ML (macOS)" or "Core ML reference executor (Linux)") so no report mixes them up.

Options (through `open_runner(path, **options)`):
- `compute_units`: all | cpu_only | cpu_and_gpu | cpu_and_ne — Core ML's compute units on macOS;
  recorded but not emulated by the reference executor.
- `executor`: auto (Core ML on macOS, else the reference executor) | coreml | reference — e.g.
  `executor="reference"` on a Mac compares the reference executor with Core ML on the same machine.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgeattn.errors import InputError, UnavailableError
from edgeattn.manifest import ArtifactManifest, read_manifest
from edgeattn.registry import Registry
from edgeattn.runtime.base import RUNNERS, Runner
from edgeattn.runtime.coreml_ref.ct_import import import_coremltools

# edgeattn names -> coremltools.ComputeUnit members.
COMPUTE_UNITS = {
    "all": "ALL",
    "cpu_only": "CPU_ONLY",
    "cpu_and_gpu": "CPU_AND_GPU",
    "cpu_and_ne": "CPU_AND_NE",
}


class _Backend:
    """What executes the program: `run` maps a float32 NCHW batch to float32 logits."""

    runtime: str
    max_batch: int | None
    details: dict[str, Any]

    def run(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


COREML_BACKENDS: Registry[type[_Backend]] = Registry("Core ML executor")


@COREML_BACKENDS.register("reference")
class ReferenceBackend(_Backend):
    """The ML Program run op by op on the CPU (torch), each op rounded to its declared dtype."""

    def __init__(self, path: Path, compute_units: str, output_name: str, threads: int | None = None) -> None:
        from edgeattn.runtime.coreml_ref import load_program

        if threads:
            import torch

            torch.set_num_threads(threads)
        self.program = load_program(path)
        if len(self.program.inputs) != 1:
            names = ", ".join(i.name for i in self.program.inputs)
            raise InputError(
                f"{path.name} takes {len(self.program.inputs)} inputs ({names})",
                "export an image classifier with one input",
            )
        self.input = self.program.inputs[0]
        self.output = output_name if output_name in self.program.outputs else self.program.outputs[0]
        shape = self.input.type.shape
        self.max_batch = shape[0] if shape and shape[0] is not None else None
        self.runtime = f"Core ML reference executor ({platform.system()})"
        ct = import_coremltools()
        self.details = {
            "executor": "reference",
            "coremltools": ct.__version__,
            "deployment_target": self.program.deployment_target,
            "compute_dtype": self.program.compute_dtype,
            "compute_units": f"{compute_units} (not emulated: the program runs as written, on the CPU)",
        }

    def run(self, x: np.ndarray) -> np.ndarray:
        out = self.program.run({self.input.name: x})[self.output]
        return np.asarray(out, dtype=np.float32)


@COREML_BACKENDS.register("coreml")
class CoreMLBackend(_Backend):
    """Apple's Core ML framework through coremltools' `MLModel.predict` (macOS only)."""

    def __init__(self, path: Path, compute_units: str, output_name: str, threads: int | None = None) -> None:
        if sys.platform != "darwin":
            raise UnavailableError(
                f"Core ML predictions need macOS (this is {platform.system()})",
                "use the reference executor (executor='reference', the default here) or run on a Mac",
            )
        ct = import_coremltools()
        self.model = ct.models.MLModel(
            str(path), compute_units=getattr(ct.ComputeUnit, COMPUTE_UNITS[compute_units])
        )
        spec = self.model.get_spec()
        feature = spec.description.input[0]
        self.input_name = feature.name
        self.image = feature.type.WhichOneof("Type") == "imageType"
        outputs = [o.name for o in spec.description.output]
        self.output = output_name if output_name in outputs else outputs[0]
        if self.image:
            self.max_batch = None  # image inputs take one picture per prediction; `run` loops
            self.dtype = np.float32
        else:
            arr = feature.type.multiArrayType
            self.dtype = np.float16 if arr.dataType == arr.FLOAT16 else np.float32
            shape = list(arr.shape)
            flexible = arr.WhichOneof("ShapeFlexibility") is not None
            self.max_batch = None if flexible or not shape else int(shape[0])
        self.runtime = "Core ML (macOS)"
        self.details = {
            "executor": "coreml",
            "coremltools": ct.__version__,
            "compute_units": compute_units,
            "macos": platform.mac_ver()[0],
        }

    def run(self, x: np.ndarray) -> np.ndarray:
        if self.image:
            from PIL import Image

            outs = []
            for img in np.clip(np.rint(x), 0, 255).astype(np.uint8):
                pil = Image.fromarray(np.ascontiguousarray(img.transpose(1, 2, 0)), "RGB")
                outs.append(
                    np.asarray(self.model.predict({self.input_name: pil})[self.output], np.float32).reshape(
                        1, -1
                    )
                )
            return np.concatenate(outs)
        out = self.model.predict({self.input_name: np.ascontiguousarray(x, dtype=self.dtype)})[self.output]
        return np.asarray(out, dtype=np.float32).reshape(len(x), -1)


class CoreMLRunner(Runner):
    kind = "coreml"
    suffixes = (".mlpackage",)

    @classmethod
    def speed_unavailable_reason(cls) -> str | None:
        if sys.platform != "darwin":
            return "Core ML runs only on macOS; on Linux the reference executor measures accuracy, not Core ML's speed"
        return None

    def __init__(
        self,
        path: Path,
        compute_units: str = "all",
        executor: str = "auto",
        threads: int | None = None,
        manifest: ArtifactManifest | None = None,
        **_: object,
    ) -> None:
        path = Path(path)
        if compute_units not in COMPUTE_UNITS:
            raise InputError(
                f"unknown Core ML compute units {compute_units!r}",
                f"choose one of: {', '.join(COMPUTE_UNITS)}",
            )
        self.manifest = manifest or read_manifest(path)  # given: a manifest-less artifact (edgeattn.byo)
        self.input_spec = self.manifest.spec
        self.num_classes = self.manifest.num_classes
        self.precision = self.manifest.precision
        self.image_input = self.manifest.image_input
        self.compute_units = compute_units
        chosen = executor if executor != "auto" else ("coreml" if sys.platform == "darwin" else "reference")
        self.backend = COREML_BACKENDS.get(chosen)(path, compute_units, self.manifest.output_name, threads)
        self.runtime = self.backend.runtime
        self.max_batch = self.backend.max_batch

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.backend.run(x)

    def info(self) -> dict[str, Any]:
        return {**super().info(), **self.backend.details}


RUNNERS.register("coreml", CoreMLRunner)
