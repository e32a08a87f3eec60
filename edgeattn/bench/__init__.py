"""Latency benchmark on the runtime that will serve each artifact (`edgeattn bench`, `make bench`).

A benchmark is not a test: it measures, prints a table with ratios to a baseline, and writes JSON,
Markdown and a PNG. Modules: `harness` (timing, memory), `worker` (one fresh process per artifact),
`runtimes` (which runtime can be timed here), `env` (environment capture), `report` (rows, tables),
`plot` (PNG), `suite` (`bench_artifacts`), `standing` (the project's standing benchmark).
"""

from edgeattn.bench.config import BenchConfig
from edgeattn.bench.harness import latency_stats
from edgeattn.bench.plot import write_bench_plot
from edgeattn.bench.report import BenchReport, BenchRow, Skipped, to_markdown
from edgeattn.bench.suite import bench_artifacts

__all__ = [
    "BenchReport",
    "BenchRow",
    "BenchConfig",
    "Skipped",
    "bench_artifacts",
    "latency_stats",
    "to_markdown",
    "write_bench_plot",
]
