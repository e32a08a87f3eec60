"""`edgeattn bench`: latency of artifacts on the runtime that will serve them, compared in one run."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.bench.config import BenchConfig
from edgeattn.byo.config import SPEC_OPTIONS, ArtifactSpec
from edgeattn.cli.common import JSON_OPTION, out, with_device
from edgeattn.cli.options import with_config
from edgeattn.device.config import DeviceConfig


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


@with_config(BenchConfig, flags={"batches": "--batch", "graph_optimization": "--graph-opt"})
@with_config(ArtifactSpec, **SPEC_OPTIONS)
@with_device
def bench(
    artifacts: list[Path] = typer.Argument(
        ...,
        help="Artifacts to measure: checkpoints (.pt), .onnx, TensorRT engines, .mlpackage, web export folders.",
    ),
    baseline: Path = typer.Option(
        None, "--baseline", help="Artifact the others are compared with (default: the first FP32 one)."
    ),
    json_out: Path = JSON_OPTION,
    markdown: Path = typer.Option(
        None, "--markdown", help="Also write the table as Markdown.", dir_okay=False
    ),
    plot: Path = typer.Option(
        None, "--plot", help="Write a PNG: latency per artifact (and accuracy vs latency).", dir_okay=False
    ),
    config: BenchConfig | None = None,
    device: DeviceConfig | None = None,
    spec: ArtifactSpec | None = None,
) -> None:
    """Measure latency like the runtimes' own tools: fixed threads, warm-up, many runs, median/p90/p99.

    Each artifact runs in a fresh process (model load time and peak memory are its own). Artifacts
    whose runtime is not on this machine are listed as skipped with the reason. With --device, the
    artifacts are copied to the device and timed there by its own Python (numpy + the runtime).
    An .onnx/.mlpackage that edgeattn did not export is timed on random inputs of its graph's shape,
    as onnxruntime_perf_test and trtexec do (--input-size where the graph's sides are symbolic).

    Examples:
      edgeattn bench exported/m.onnx exported/m-int8.onnx --batch 1 --batch 8 --threads 2 --json bench.json --plot bench.png
      edgeattn bench exported/m.onnx exported/m-int8.onnx --device ssh://pi@raspberrypi.local
      edgeattn bench their_model.onnx --batch 1 --batch 4
    """
    from edgeattn.bench import bench_artifacts, to_markdown, write_bench_plot
    from edgeattn.bench.report import render_rich
    from edgeattn.errors import InputError
    from edgeattn.fileio import check_writable, write_json, write_text

    assert config is not None
    if config.iters is not None and config.seconds is not None:
        raise InputError(
            "--iters and --seconds were both given", "give either a number of runs or a time budget"
        )
    for target in (json_out, markdown, plot):
        if target is not None:
            check_writable(target)
    report = bench_artifacts(list(artifacts), config, baseline=baseline, device=device, spec=spec)
    render_rich(report, out)
    if json_out is not None:
        write_json(json_out, report.to_dict())
    if markdown is not None:
        write_text(markdown, to_markdown(report))
    if plot is not None:
        if report.rows:
            write_bench_plot(report, plot)
        else:
            out.print(f"no artifact could be measured here, so no plot was written to {plot}")
