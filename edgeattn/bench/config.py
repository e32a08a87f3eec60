"""`BenchConfig`: how to measure latency — the same settings for every artifact of one run."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from edgeattn.config import StageConfig

DEFAULT_ITERS = 50


class BenchConfig(StageConfig):
    """Timing like the runtimes' own tools: fixed threads, warm-up, many runs, median/p90/p99."""

    runtime: str = Field(
        "auto", description="auto (each artifact on its own runtime), onnxruntime, tensorrt, coreml or torch."
    )
    batches: tuple[int, ...] = Field(
        (1,), min_length=1, description="Batch sizes to time (--batch 1 --batch 8 for a sweep)."
    )
    threads: int = Field(2, ge=1, le=256, description="Intra-op threads for every runtime.")
    pin: bool = Field(
        False, description="Pin each measurement to the first THREADS CPUs (os.sched_setaffinity)."
    )
    warmup: int = Field(10, ge=0, le=10_000, description="Untimed runs before timing.")
    iters: int | None = Field(
        None, ge=1, le=1_000_000, description=f"Timed runs per batch size (default {DEFAULT_ITERS})."
    )
    seconds: float | None = Field(
        None, gt=0, le=3600, description="Time budget per batch size instead of iters."
    )
    min_iters: int = Field(5, ge=1, description="Timed runs at least, also with a time budget.")
    graph_optimization: Literal["disable", "basic", "extended", "all"] = Field(
        "all", description="onnxruntime graph optimisation: disable, basic, extended, all."
    )
    execution_mode: Literal["sequential", "parallel"] = Field(
        "sequential", description="onnxruntime execution mode: sequential or parallel."
    )
    compute_units: Literal["all", "cpu_only", "cpu_and_gpu", "cpu_and_ne"] = Field(
        "all", description="Core ML (macOS): all, cpu_only, cpu_and_gpu, cpu_and_ne."
    )
    macs: bool = Field(True, description="Count each model's MACs (from its config) after timing.")
    seed: int = Field(0, description="Seed of the random input images.")
    isolate: bool = Field(
        True,
        description="Each artifact in a fresh process (own peak memory, no shared thread pools); false is faster.",
    )

    @field_validator("batches")
    @classmethod
    def _positive_sorted(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(b < 1 for b in v):
            raise PydanticCustomError("bad_batch", "batch sizes must be >= 1")
        return tuple(sorted(set(v)))

    @field_validator("compute_units", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @property
    def timed_runs(self) -> int:
        """Timed runs per batch size when there is no time budget."""
        return self.iters or DEFAULT_ITERS

    def runner_options(self) -> dict[str, Any]:
        """Keyword options every runner accepts (runners ignore the ones that do not concern them)."""
        return {
            "threads": self.threads,
            "graph_optimization": self.graph_optimization,
            "execution_mode": self.execution_mode,
            "compute_units": self.compute_units,
        }
