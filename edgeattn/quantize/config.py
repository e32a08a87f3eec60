"""`QuantizeConfig`: every option of INT8 quantization (PTQ and QAT), written once."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from edgeattn.config import StageConfig

Preset = Literal["performance", "mixed"]
# Kinds of CPU int8 arithmetic (edgeattn.device.cpu.CPU_INT8_KINDS), or auto: detect this machine's.
CpuInt8Choice = Literal["auto", "vnni", "arm-dotprod", "avx2", "none"]


class QuantizeConfig(StageConfig):
    """NNCF PTQ on the calibration split, optionally followed by QAT with distillation."""

    qat: bool = Field(False, description="Quantization-aware training after PTQ (KD from the FP32 model).")
    calib_size: int = Field(
        300, ge=1, le=100_000, description="Calibration images (from the calibration split)."
    )
    calib: str | None = Field(
        None,
        description="Folder of unlabeled images to calibrate on, instead of the data set's calibration split.",
    )
    preset: Preset = Field(
        "performance", description="performance (symmetric activations) or mixed (asymmetric)."
    )
    smooth_quant: bool | None = Field(
        None, description="SmoothQuant for linear layers (default: on for transformer families)."
    )
    bias_correction: bool = Field(True, description="NNCF fast bias correction.")
    ignored: tuple[str, ...] = Field(
        (), description="Keep matching layers in float (module path or glob, repeatable, comma-separated)."
    )
    max_drop: float | None = Field(
        None,
        ge=0,
        le=100,
        description="Top-1 points the INT8 model may lose; the costliest layers stay float until it fits.",
    )
    runtime: str = Field(
        "onnxruntime",
        description="Runtime whose int8 kernels decide the Q/DQ placement: onnxruntime or tensorrt.",
    )
    cpu_int8: CpuInt8Choice = Field(
        "auto",
        description="CPU int8 arithmetic the onnxruntime placement is for: auto (this machine's, detected), "
        "vnni (x86 VNNI/AMX), arm-dotprod (ARM dotprod/i8mm), avx2 (x86 without VNNI: 7-bit weights) or none.",
    )
    epochs: int = Field(2, ge=1, le=1000, description="QAT epochs.")
    lr: float = Field(1e-4, gt=0, le=1, description="QAT learning rate (cosine schedule).")
    batch_size: int = Field(64, ge=1, le=4096, description="QAT batch size (per process under torchrun).")

    # Options only QAT reads (kept out of a PTQ step's cache key).
    QAT_ONLY: ClassVar[frozenset[str]] = frozenset({"epochs", "lr", "batch_size"})
