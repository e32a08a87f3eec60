"""`QuantizeReport`: top-1 FP32/PTQ/QAT, which layers are INT8 and why the others are not, sizes."""

from __future__ import annotations

from typing import Any

from edgeattn.result import StageResult


class StageTop1(StageResult):
    fp32: float
    ptq: float
    qat: float | None = None


class LayerRow(StageResult):
    layer: str
    type: str
    params: int
    precision: str  # int8 | float
    reason: str
    ops: list[str] = []


class WeightSizes(StageResult):
    fp32_bytes: int
    int8_bytes: int
    ratio: float
    int8_weight_share: float


class BudgetInfo(StageResult):
    """What `--max-drop` kept in float, and the sensitivity ranking it chose from."""

    budget: float
    kept_float: list[str]
    ranking: list[dict[str, Any]]


class QATInfo(StageResult):
    epochs: list[dict[str, Any]]
    distributed: dict[str, Any] | None = None


class QuantizeReport(StageResult):
    checkpoint: str
    out: str
    model: str
    runtime: str
    placement: str
    policy: str  # the placement policy chosen, e.g. onnxruntime/vnni
    policy_reason: str  # why: the CPU's int8 instructions (or --cpu-int8) and the formats they imply
    preset: str
    data: str
    calibration_images: int
    eval_images: int
    top1: StageTop1
    layers: list[LayerRow]
    int8_layers: int
    float_layers: int
    size: WeightSizes
    max_drop: BudgetInfo | None = None
    qat: QATInfo | None = None
    seconds: float

    def top1_rows(self) -> list[list[str]]:
        """Rows of the top-1 table: stage, top-1, drop vs FP32."""
        rows = []
        for stage in ("fp32", "ptq", "qat"):
            v = getattr(self.top1, stage)
            if v is not None:
                drop = "" if stage == "fp32" else f"{self.top1.fp32 - v:+.2f}"
                rows.append([stage.upper(), f"{v:.2f}", drop])
        return rows
