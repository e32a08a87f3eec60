"""`edgeattn quantize`: FP32 (or pruned) checkpoint -> INT8 checkpoint (NNCF PTQ, optional QAT)."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.cli.common import JSON_OPTION, OUT_HELP, emit_json, fmt_count, out, print_table


def register(app: typer.Typer) -> None:
    app.command("quantize")(quantize)


def quantize(
    ckpt: Path = typer.Argument(..., help="FP32 (or pruned) checkpoint to quantize."),
    data: str = typer.Option(
        ...,
        "--data",
        help="Data-set spec: calibration split for PTQ, train split for QAT, val split for top-1.",
    ),
    out_path: Path = typer.Option(..., "--out", help=OUT_HELP, dir_okay=False),
    qat: bool = typer.Option(
        False, "--qat", help="Quantization-aware training after PTQ (KD from the FP32 model)."
    ),
    epochs: int = typer.Option(2, "--epochs", help="QAT epochs."),
    calib_size: int = typer.Option(
        300, "--calib-size", help="Calibration images (from the calibration split)."
    ),
    preset: str = typer.Option(
        "performance", "--preset", help="performance (symmetric activations) or mixed (asymmetric)."
    ),
    smooth_quant: bool = typer.Option(
        None,
        "--smooth-quant/--no-smooth-quant",
        help="SmoothQuant for linear layers (default: on for transformer families).",
    ),
    bias_correction: bool = typer.Option(
        True, "--bias-correction/--no-bias-correction", help="NNCF fast bias correction."
    ),
    ignored: list[str] = typer.Option(
        None,
        "--ignored",
        help="Keep matching layers in float (module path or glob, repeatable, comma-separated).",
    ),
    max_drop: float = typer.Option(
        None,
        "--max-drop",
        help="Top-1 points the INT8 model may lose; the costliest layers stay float until it fits.",
    ),
    runtime: str = typer.Option(
        "onnxruntime",
        "--runtime",
        help="Runtime whose int8 kernels decide the Q/DQ placement: onnxruntime or tensorrt.",
    ),
    lr: float = typer.Option(1e-4, "--lr", help="QAT learning rate (cosine schedule)."),
    batch_size: int = typer.Option(64, "--batch-size", help="QAT batch size (per process under torchrun)."),
    seed: int = typer.Option(0, "--seed"),
    json_out: Path = JSON_OPTION,
) -> None:
    """Quantize to INT8 with NNCF: PTQ on the calibration split, optional QAT with distillation.

    Under `torchrun --nproc-per-node N -m edgeattn quantize ... --qat` QAT runs with DDP (gloo),
    each process on its shard of the training data; rank 0 writes the checkpoint.

    Example: edgeattn quantize exported/mvit.pt --data builtin:digits --qat --epochs 2 --out exported/mvit_int8.pt
    """
    from edgeattn.quantize import quantize_checkpoint
    from edgeattn.quantize.distributed import launched_by_torchrun

    patterns = [p.strip() for item in (ignored or []) for p in item.split(",") if p.strip()]
    summary = quantize_checkpoint(
        ckpt,
        data,
        out_path,
        qat=qat,
        epochs=epochs,
        calib_size=calib_size,
        preset=preset,
        smooth_quant=smooth_quant,
        bias_correction=bias_correction,
        ignored=patterns,
        max_drop=max_drop,
        seed=seed,
        runtime=runtime,
        lr=lr,
        batch_size=batch_size,
    )
    import os

    if launched_by_torchrun() and os.environ.get("RANK", "0") != "0":
        return  # rank 0 reports
    render(summary)
    emit_json(summary, json_out)


def render(summary: dict) -> None:
    from edgeattn.quantize.summary import summary_rows

    print_table(
        f"{summary['model']} INT8 for {summary['runtime']} -> {summary['out']}",
        ["stage", "top-1 %", "drop (pp)"],
        summary_rows(summary),
    )
    size = summary["size"]
    print_table(
        "size (weights)",
        ["precision", "bytes"],
        [
            ["FP32", fmt_count(size["fp32_bytes"])],
            [
                "INT8",
                f"{fmt_count(size['int8_bytes'])} ({size['ratio']}x smaller, {size['int8_weight_share']}% of weights int8)",
            ],
        ],
    )
    rows = [
        [
            r["layer"],
            r["type"],
            fmt_count(r["params"]),
            r["precision"],
            "" if r["precision"] == "int8" else r["reason"],
        ]
        for r in summary["layers"]
    ]
    print_table(
        f"layers: {summary['int8_layers']} INT8, {summary['float_layers']} float",
        ["layer", "type", "params", "precision", "why float"],
        rows,
    )
    if summary.get("max_drop") and summary["max_drop"]["kept_float"]:
        out.print(f"--max-drop kept in float: {', '.join(summary['max_drop']['kept_float'])}")
