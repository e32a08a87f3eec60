"""Runs an ONNX artifact on onnxruntime (CPU; CUDA/TensorRT execution providers when present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeattn.errors import InputError
from edgeattn.manifest import ArtifactManifest, read_manifest
from edgeattn.runtime.base import RUNNERS, Runner

GRAPH_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


class OnnxRuntimeRunner(Runner):
    kind = "onnxruntime"
    suffixes = (".onnx",)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        import importlib.util

        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed (pip install onnxruntime)"
        return None

    @classmethod
    def preflight(cls, path: Path) -> None:
        super().preflight(path)
        check_onnx_readable(path)

    def __init__(
        self,
        path: Path,
        threads: int | None = None,
        providers: list[str] | None = None,
        graph_optimization: str = "all",
        execution_mode: str = "sequential",
        manifest: ArtifactManifest | None = None,
        **_: object,
    ) -> None:
        import onnxruntime as ort

        self.manifest = manifest or read_manifest(path)  # given: a manifest-less artifact (edgeattn.byo)
        self.input_spec = self.manifest.spec
        self.num_classes = self.manifest.num_classes
        self.precision = self.manifest.precision
        self.image_input = self.manifest.image_input
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_LEVELS[graph_optimization])
        opts.execution_mode = (
            ort.ExecutionMode.ORT_PARALLEL
            if execution_mode == "parallel"
            else ort.ExecutionMode.ORT_SEQUENTIAL
        )
        available = ort.get_available_providers()
        chosen = [p for p in (providers or ["CPUExecutionProvider"]) if p in available] or [
            "CPUExecutionProvider"
        ]
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=chosen)
        except Exception as exc:  # onnxruntime raises its own exception types for bad models
            raise InputError(
                f"onnxruntime cannot load {path} ({str(exc).splitlines()[0][:200]})", "re-export the model"
            ) from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_type = np.float16 if "float16" in inp.type else np.float32
        batch_dim = inp.shape[0]
        self.max_batch = batch_dim if isinstance(batch_dim, int) else None
        _check_matches_manifest(
            path,
            list(inp.shape),
            list(self.session.get_outputs()[0].shape),
            self.input_spec.size,
            self.num_classes,
        )
        self.runtime = f"onnxruntime {ort.__version__} ({self.session.get_providers()[0]})"

    def run(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=self.input_type)})[0]
        return out.astype(np.float32)


RUNNERS.register("onnxruntime", OnnxRuntimeRunner)


def check_onnx_readable(path: Path) -> None:
    """A truncated or non-ONNX file fails here, in one line, before any process starts."""
    import onnx

    try:
        onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001  protobuf raises DecodeError, onnx its own errors
        detail = str(exc).splitlines()[0][:120] if str(exc) else ""
        raise InputError(
            f"{path} is not a readable ONNX model ({type(exc).__name__}: {detail})",
            "re-export it (the file is corrupt or truncated)",
        ) from None


def _check_matches_manifest(
    path: Path, in_shape: list, out_shape: list, size: tuple[int, int], num_classes: int
) -> None:
    """The graph's fixed input size and class count must be the manifest's (a swapped or stale sidecar)."""
    hw = [d for d in in_shape[2:4] if isinstance(d, int)]
    if len(hw) == 2 and tuple(hw) != tuple(size):
        raise InputError(
            f"{path.name} takes {hw[0]}x{hw[1]} inputs but its manifest says {size[0]}x{size[1]}",
            "the manifest does not belong to this file: re-export the artifact",
        )
    classes = out_shape[-1] if out_shape else None
    if isinstance(classes, int) and classes != num_classes:
        raise InputError(
            f"{path.name} outputs {classes} classes but its manifest says {num_classes}",
            "the manifest does not belong to this file: re-export the artifact",
        )
