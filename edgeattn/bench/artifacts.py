"""Artifacts the benchmark compares that no other edgeattn stage makes.

- `export_onnx`: FP32 ONNX with a manifest. It uses the export stage (`edgeattn.export.export_artifact`)
  when it is installed, and otherwise a plain `torch.onnx.export` (TorchScript exporter, dynamic batch)
  so that the harness works on its own.
- `peer_quantize_static`: the plain peer tool, onnxruntime's `quantize_static` with its defaults (QDQ,
  int8 activations and weights, per-tensor, MinMax) on the same FP32 ONNX and the same calibration
  images as edgeattn's INT8 (the best-configured peers are in peers.py).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from edgeattn.checkpoint import ModelHandle, load_checkpoint
from edgeattn.fileio import atomic_output
from edgeattn.manifest import ArtifactManifest, library_versions, read_manifest, write_manifest


def export_stage_available() -> bool:
    try:
        return hasattr(importlib.import_module("edgeattn.export"), "export_artifact")
    except ImportError:
        return False


def export_onnx(source: Path | ModelHandle, out: Path, *, opset: int = 17, max_batch: int = 64) -> Path:
    """FP32 ONNX (dynamic batch 1..max_batch) plus manifest, through the export stage when present."""
    out = Path(out)
    if export_stage_available():
        from edgeattn.export import export_artifact

        export_artifact(source, "onnx", out, precision="fp32", dynamic_batch=(1, 1, max_batch), opset=opset)
        return out
    handle = load_checkpoint(source) if isinstance(source, str | Path) else source
    return torch_onnx_export(handle, out, opset=opset, max_batch=max_batch)


def torch_onnx_export(handle: ModelHandle, out: Path, *, opset: int = 17, max_batch: int = 64) -> Path:
    """`torch.onnx.export` (TorchScript exporter: seconds, where the dynamo exporter takes minutes on
    2 cores) with a dynamic batch axis, then the manifest."""
    from edgeattn.onnx.torch_export import torch_to_onnx

    with atomic_output(out) as tmp:
        torch_to_onnx(
            handle.module,
            tmp,
            input_shape=handle.input_spec.shape(1),
            opset=opset,
            dynamic_batch=(1, max_batch),
        )
    h, w = handle.input_spec.size
    manifest = ArtifactManifest(
        artifact=out.name,
        target="onnx",
        precision="fp32",
        model=handle.config.to_dict(),
        input_spec=handle.input_spec.to_dict(),
        num_classes=handle.config.num_classes,
        input_shape=["batch", handle.input_spec.channels, h, w],
        batch={"min": 1, "opt": 1, "max": max_batch},
        source_kind=handle.kind,
        history=list(handle.history),
        versions=library_versions(),
        metrics=dict(handle.metrics),
        details={"opset": opset, "exporter": "torch.onnx.export (TorchScript), edgeattn.bench fallback"},
    )
    write_manifest(out, manifest)
    return out


class _Calibration:
    """onnxruntime CalibrationDataReader over preprocessed images, in small batches."""

    def __init__(self, input_name: str, batches: list[np.ndarray]) -> None:
        self.input_name = input_name
        self._it = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self.input_name: x}

    def rewind(self) -> None:  # pragma: no cover  (only some calibrators rewind)
        pass


def calibration_reader(input_name: str, batches: list[np.ndarray]) -> Any:
    """An onnxruntime CalibrationDataReader that feeds `batches` to input `input_name` once."""
    return _Calibration(input_name, batches)


def calibration_batches(images: Any, fp32_onnx: Path, batch: int = 8) -> list[np.ndarray]:
    """uint8 images -> the FP32 artifact's inputs, preprocessed exactly as its runner does."""
    from edgeattn.runtime import open_runner

    runner = open_runner(fp32_onnx, threads=1)
    try:
        return [runner.prepare(images[i : i + batch]) for i in range(0, len(images), batch)]
    finally:
        runner.close()


def peer_quantize_static(fp32_onnx: Path, out: Path, calib_images: Any, *, note: str = "") -> Path:
    """INT8 ONNX from `onnxruntime.quantization.quantize_static` with every option at its default."""
    from onnxruntime.quantization import quantize_static

    fp32_onnx, out = Path(fp32_onnx), Path(out)
    src = read_manifest(fp32_onnx)
    reader = calibration_reader(src.input_name, calibration_batches(calib_images, fp32_onnx))
    with atomic_output(out) as tmp:
        quantize_static(str(fp32_onnx), str(tmp), reader)
    manifest = ArtifactManifest(
        **{**src.to_dict(), "precision": "int8", "metrics": {}, "versions": library_versions()}
    )
    manifest.history = [
        *src.history,
        {
            "step": "quantize",
            "tool": "onnxruntime.quantization.quantize_static",
            "options": "defaults",
            "calibration_images": len(calib_images),
            "from": fp32_onnx.name,
        },
    ]
    manifest.details = {
        **src.details,
        "quantizer": "onnxruntime.quantization.quantize_static (defaults: QDQ, QInt8/QInt8, per-tensor, MinMax)",
        "note": note,
    }
    write_manifest(out, manifest)
    return out
