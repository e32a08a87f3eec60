"""`edgeattn bench`: latency of artifacts on the runtime that will serve them, compared in one run."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.cli.common import JSON_OPTION, out


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def bench(
    artifacts: list[Path] = typer.Argument(
        ..., help="Artifacts to measure: checkpoints (.pt), .onnx, TensorRT engines, .mlpackage."
    ),
    runtime: str = typer.Option(
        "auto",
        "--runtime",
        help="auto (each artifact on its own runtime), onnxruntime, tensorrt, coreml or torch.",
    ),
    batch: list[int] = typer.Option(
        [1], "--batch", help="Batch size; repeat for a sweep (--batch 1 --batch 8)."
    ),
    threads: int = typer.Option(2, "--threads", help="Intra-op threads for every runtime."),
    pin: bool = typer.Option(
        False, "--pin", help="Pin each measurement to the first THREADS CPUs (os.sched_setaffinity)."
    ),
    warmup: int = typer.Option(10, "--warmup", help="Untimed runs before timing."),
    iters: int = typer.Option(None, "--iters", help="Timed runs per batch size (default 50)."),
    seconds: float = typer.Option(None, "--seconds", help="Time budget per batch size instead of --iters."),
    baseline: Path = typer.Option(
        None, "--baseline", help="Artifact the others are compared with (default: the first FP32 one)."
    ),
    graph_opt: str = typer.Option(
        "all", "--graph-opt", help="onnxruntime graph optimisation: disable, basic, extended, all."
    ),
    execution_mode: str = typer.Option(
        "sequential", "--execution-mode", help="onnxruntime execution mode: sequential or parallel."
    ),
    compute_units: str = typer.Option(
        "all", "--compute-units", help="Core ML (macOS): all, cpu_only, cpu_and_gpu, cpu_and_ne."
    ),
    json_out: Path = JSON_OPTION,
    markdown: Path = typer.Option(
        None, "--markdown", help="Also write the table as Markdown.", dir_okay=False
    ),
    plot: Path = typer.Option(
        None, "--plot", help="Write a PNG: latency per artifact (and accuracy vs latency).", dir_okay=False
    ),
) -> None:
    """Measure latency like the runtimes' own tools: fixed threads, warm-up, many runs, median/p90/p99.

    Each artifact runs in a fresh process (model load time and peak memory are its own). Artifacts
    whose runtime is not on this machine are listed as skipped with the reason.

    Example: edgeattn bench exported/m.onnx exported/m-int8.onnx --batch 1 --batch 8 --threads 2 --json bench.json --plot bench.png
    """
    from edgeattn.bench import bench_artifacts, to_markdown, write_bench_plot
    from edgeattn.bench.report import render_rich
    from edgeattn.errors import InputError
    from edgeattn.fileio import check_writable, write_json, write_text

    if iters is not None and seconds is not None:
        raise InputError(
            "--iters and --seconds were both given", "give either a number of runs or a time budget"
        )
    for target in (json_out, markdown, plot):
        if target is not None:
            check_writable(target)
    report = bench_artifacts(
        list(artifacts),
        runtime=runtime,
        batches=list(batch),
        threads=threads,
        warmup=warmup,
        iters=50 if iters is None and seconds is None else iters,
        seconds=seconds,
        baseline=baseline,
        pin=pin,
        graph_optimization=graph_opt,
        execution_mode=execution_mode,
        compute_units=compute_units,
    )
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
