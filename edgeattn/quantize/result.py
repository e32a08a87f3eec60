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


class GroupDecision(StageResult):
    """One group of layers timed INT8 vs float in the whole model (`--placement measured`)."""

    group: str  # "attention linear @ stages.3"
    kind: str
    stage: str
    layers: list[str]
    int8_ms: float | None  # median over rounds, the model with this group INT8 (None: not timed)
    float_ms: float | None  # the same model with only this group's Q/DQ removed
    speedup: float | None  # float_ms / int8_ms per round, median (> 1: INT8 is faster)
    interval: list[float] = []  # bootstrap 95 % interval of the speedup
    rounds: int = 0
    kept: str  # int8 | float
    note: str = ""


class MeasuredPlacement(StageResult):
    """What `--placement measured` timed, decided and recommends for this CPU."""

    timer: str  # where and how: "onnxruntime 1.32.0 CPU here, 2 threads, batch 1"
    input_shape: list[int] = []  # what was timed, e.g. [1, 3, 224, 224] (`--placement-size`)
    budget_s: float
    seconds: float
    groups: list[GroupDecision]
    fp32_ms: float
    int8_ms: float
    speedup: float  # FP32 time / final INT8 time, median over paired rounds
    interval: list[float]  # its bootstrap 95 % interval
    rounds: int
    recommended: str  # int8 | fp32: the artifact to deploy on this CPU
    verdict: str

    def group_rows(self) -> list[list[str]]:
        """Rows of the decision table: group, layers, ms int8, ms float, speedup [interval], kept."""

        def ms(v: float | None) -> str:
            return "—" if v is None else f"{v:.2f}"

        rows = []
        for g in self.groups:
            speed = (
                "—" if g.speedup is None else f"{g.speedup:.2f}x ({g.interval[0]:.2f}–{g.interval[1]:.2f})"
            )
            rows.append([g.group, str(len(g.layers)), ms(g.int8_ms), ms(g.float_ms), speed, g.kept, g.note])
        return rows


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
    measured: MeasuredPlacement | None = None
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
