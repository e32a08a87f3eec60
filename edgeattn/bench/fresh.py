"""The standing benchmark's fresh-process pass: each artifact in a process of its own, one after
another, for its peak RSS and (FP32 and edgeattn's artifacts) its larger-batch latency. Batch-1
latency comes from the interleaved rounds instead (standing.py), which give every ratio an interval."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeattn.bench.report import BenchReport

if TYPE_CHECKING:
    from edgeattn.bench.standing import StandingSettings

# Variants timed at the larger batch in the fresh-process pass: the FP32 baseline and edgeattn's own
# artifacts. The others get the smallest batch there (their peak RSS); their batch-1 latency comes from
# the interleaved rounds like everyone's. Timing every variant at batch 8 took 119 s of attn_vgg16's run.
LARGE_BATCH_VARIANTS = ("ort-fp32", "ort-int8-edgeattn", "ort-fp32-pruned")


def fresh_batches(settings: StandingSettings, variants: int) -> list[int]:
    """Batch sizes of the fresh-process pass: the largest only when the smallest is timed in rounds."""
    interleaved = variants >= 2 and settings.rounds >= 2
    return (
        [b for b in settings.batches if b != min(settings.batches)] or list(settings.batches)
        if interleaved
        else list(settings.batches)
    )


def fresh_passes(settings: StandingSettings, keys: list[str]) -> list[tuple[list[int], list[str]]]:
    """(batch sizes, variant keys) of each fresh-process pass: `LARGE_BATCH_VARIANTS` at
    `fresh_batches`, the rest at the smallest batch only (for their peak RSS)."""
    large = [k for k in keys if k in LARGE_BATCH_VARIANTS] or keys
    rest = [k for k in keys if k not in large]
    passes = [(fresh_batches(settings, len(keys)), large)]
    return passes + ([([min(settings.batches)], rest)] if rest else [])


def fresh_process_pass(
    deploy: Mapping[str, Path],
    settings: StandingSettings,
    *,
    baseline: Path | None,
    labels: Mapping[Path, str],
    extras: Mapping[Path, Mapping[str, Any]],
    title: str,
    notes: list[str],
) -> BenchReport:
    """One report with every variant's fresh-process rows (`fresh_passes` decides the batch sizes)."""
    from edgeattn.bench.suite import bench_artifacts

    report: BenchReport | None = None
    for batches, keys in fresh_passes(settings, list(deploy)):
        part = bench_artifacts(
            [deploy[k] for k in keys], batches=batches, threads=settings.threads, warmup=settings.warmup,
            iters=None, seconds=settings.seconds, min_iters=settings.min_iters, baseline=baseline, labels=labels,
            extras=extras, title=title, notes=notes,
        )  # fmt: skip
        if report is None:
            report = part
        else:
            report.rows += part.rows
            report.skipped += part.skipped
    assert report is not None  # fresh_passes always yields the first pass
    return report
