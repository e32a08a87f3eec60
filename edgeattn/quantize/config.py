"""`QuantizeConfig`: every option of INT8 quantization (PTQ and QAT), written once."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from edgeattn.config import StageConfig

Preset = Literal["performance", "mixed"]
# auto: the runtime's fast activation format on the CPU it runs on (placement.py's CPU variants).
PresetChoice = Literal["auto", "performance", "mixed"]
# policy: the runtime's placement rules; measured: time layer groups INT8 vs float on the runtime.
PlacementChoice = Literal["policy", "measured"]
# Kinds of CPU int8 arithmetic (edgeattn.device.cpu.CPU_INT8_KINDS), or auto: detect the CPU that runs
# the model (this machine's, or the --device's).
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
    preset: PresetChoice = Field(
        "auto",
        description="auto (the runtime's fast format for the CPU: mixed on VNNI), performance (symmetric "
        "activations) or mixed (asymmetric uint8 activations).",
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
        description="CPU int8 arithmetic the onnxruntime placement is for: auto (detected: the --device's, else this machine's), "
        "vnni (x86 VNNI/AMX), arm-dotprod (ARM dotprod/i8mm), avx2 (x86 without VNNI: 7-bit weights) or none.",
    )
    placement: PlacementChoice = Field(
        "policy",
        description="policy (the runtime's placement rules) or measured (time each group of layers INT8 vs "
        "float in the whole model on onnxruntime, here or on the --device; keep INT8 only where it is faster).",
    )
    placement_budget: float = Field(
        180.0, ge=5, le=7200, description="Seconds the measured placement may spend timing (batch 1)."
    )
    placement_size: int | None = Field(
        None,
        ge=8,
        le=4096,
        description="Input size in pixels at which --placement measured times the model: the deployment "
        "resolution when the checkpoint was trained smaller (default: the checkpoint's size).",
    )
    placement_timer: str = Field(
        "auto",
        description="Where --placement measured times the model: auto (device when --device is given, "
        "else local), local (onnxruntime CPU here) or device (onnxruntime on the --device, by its agent).",
    )
    epochs: int = Field(2, ge=1, le=1000, description="QAT epochs.")
    lr: float = Field(1e-4, gt=0, le=1, description="QAT learning rate (cosine schedule).")
    batch_size: int = Field(64, ge=1, le=4096, description="QAT batch size (per process under torchrun).")

    # Options only QAT reads (kept out of a PTQ step's cache key).
    QAT_ONLY: ClassVar[frozenset[str]] = frozenset({"epochs", "lr", "batch_size"})
