"""`ExportConfig`: how to export (precision, batch, opset, target options); the target says where to."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from edgeattn.config import StageConfig
from edgeattn.manifest import Precision


class ExportShape(StageConfig):
    """What every artifact of one export request (or of one recipe) shares: opset and batch."""

    opset: int | None = Field(
        None,
        ge=11,
        le=23,
        description="ONNX opset (also of the ONNX TensorRT builds from; INT8 Q/DQ needs 13+). Default: 17; "
        "20 for INT8 graphs for onnxruntime (its standard Gelu op keeps an INT8 model's GELU one fused kernel).",
    )
    batch: int = Field(1, ge=1, le=4096, description="Fixed batch size (when dynamic_batch is not given).")
    dynamic_batch: tuple[int, int, int] | None = Field(
        None,
        description="[min, opt, max] batch range (ONNX/TensorRT) instead of a fixed batch (CLI: MIN:OPT:MAX, e.g. 1:8:32).",
    )

    @field_validator("dynamic_batch")
    @classmethod
    def _ordered(cls, v: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        if v is not None and not (1 <= v[0] <= v[1] <= v[2]):
            raise PydanticCustomError("bad_batch", "must be [min, opt, max] with 1 <= min <= opt <= max")
        return v


class ExportConfig(ExportShape):
    """One export: precision (default: the target's), batch, opset and the target's own options."""

    precision: Precision | None = Field(
        None,
        description="fp32, fp16, int8 (quantized checkpoint), int8-weights (coreml). Default: the target's (onnx fp32, tensorrt/coreml fp16).",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Target options passed to the exporter (see its options)."
    )
