"""INT8 quantization: NNCF PTQ/QAT with Q/DQ placement chosen for the serving runtime.

`quantize_checkpoint(ckpt, data, out, ...)` is the library behind `edgeattn quantize`;
`export_quantized_onnx(handle, path, ...)` (onnx_export.py) writes the standard Q/DQ ONNX.
Imports are lazy so that loading an FP32 checkpoint never pulls in NNCF.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PLACEMENTS", "export_quantized_onnx", "quantize_checkpoint"]


def __getattr__(name: str) -> Any:
    if name == "quantize_checkpoint":
        from edgeattn.quantize.job import quantize_checkpoint

        return quantize_checkpoint
    if name == "export_quantized_onnx":
        from edgeattn.quantize.onnx_export import export_quantized_onnx

        return export_quantized_onnx
    if name == "PLACEMENTS":
        from edgeattn.quantize.placement import PLACEMENTS

        return PLACEMENTS
    raise AttributeError(name)
