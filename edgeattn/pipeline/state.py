"""What a run has produced so far: checkpoints, artifacts, skips, gate results — the data the stages
pass along and the manifest and report are written from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeattn.pipeline.recipe import LoadedRecipe
from edgeattn.prune.result import PruneReport
from edgeattn.result import StageResult

STAGE_DIRS = ("train", "prune", "quantize", "export", "validate", "bench")


@dataclass
class CheckpointInfo:
    """A checkpoint the run made or started from (baseline, pruned, ptq, qat)."""

    name: str
    path: Path
    kind: str = "fp32"  # fp32 | int8
    source: str | None = None  # the checkpoint it was made from
    accuracy: dict[str, Any] = field(default_factory=dict)  # top1/top5/n on the eval data
    params: int | None = None
    macs: int | None = None
    method: str | None = None  # quantized checkpoints: ptq | qat
    placement: str | None = None  # quantized checkpoints: the runtime its Q/DQ placement is for


@dataclass
class ArtifactInfo:
    """One exported artifact and what validation and benchmarking found."""

    id: str  # e.g. onnx-int8-ptq
    path: Path
    target: str
    precision: str
    source: str  # checkpoint name it was exported from
    sha256: str = ""
    size_bytes: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] | None = None  # on the first device of validate.device (the headline)
    validations: dict[str, dict[str, Any]] = field(default_factory=dict)  # device name -> report
    latency: list[dict[str, Any]] = field(default_factory=list)  # rows carry the device they were timed on


@dataclass
class StepOutcome:
    id: str
    stage: str
    title: str
    status: str  # ran | cached | skipped | failed
    seconds: float = 0.0
    reason: str = ""
    key: str = ""


@dataclass
class RunState:
    loaded: LoadedRecipe
    root: Path  # exported/<recipe>
    checkpoints: dict[str, CheckpointInfo] = field(default_factory=dict)
    artifacts: dict[str, ArtifactInfo] = field(default_factory=dict)
    steps: list[StepOutcome] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {step, reason}
    stage_results: dict[str, StageResult] = field(default_factory=dict)  # train, quantize/<name>
    prune_report: PruneReport | None = None
    bench: dict[str, Any] | None = None
    bench_plots: list[Path] = field(default_factory=list)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> what `device check` says

    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    @property
    def recipe(self):
        return self.loaded.recipe

    @property
    def fp32(self) -> CheckpointInfo:
        """The FP32 checkpoint later stages start from: the pruned one when pruning ran."""
        return self.checkpoints.get("pruned") or self.checkpoints["baseline"]

    @property
    def quantized(self) -> list[CheckpointInfo]:
        return [c for c in self.checkpoints.values() if c.kind != "fp32"]

    def rel(self, path: Path) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)

    def skip(self, step: str, reason: str) -> None:
        self.skipped.append({"step": step, "reason": reason})


@dataclass
class RunResult:
    """What `edgeattn run` reports: where everything is, what ran, what was skipped, what failed."""

    name: str
    root: Path
    manifest: Path
    report: Path
    junit: Path
    steps: list[StepOutcome]
    skipped: list[dict[str, str]]
    gate_failures: list[dict[str, Any]]
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.gate_failures

    def count(self, status: str) -> int:
        return sum(1 for s in self.steps if s.status == status)
