"""`edgeattn quantize`: FP32 (or pruned) checkpoint -> INT8 checkpoint (NNCF PTQ, optional QAT)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from edgeattn.cli.common import JSON_OPTION, OUT_HELP, emit_json, out, print_table, with_device
from edgeattn.cli.options import with_config
from edgeattn.data.config import DataConfig
from edgeattn.device.config import DeviceConfig
from edgeattn.quantize.config import QuantizeConfig
from edgeattn.reporting import fmt_count

if TYPE_CHECKING:
    from edgeattn.quantize.result import QuantizeReport


def register(app: typer.Typer) -> None:
    app.command("quantize")(quantize)


def split_patterns(items: list[str] | None) -> tuple[str, ...]:
    """`--ignored a,b --ignored c` -> ("a", "b", "c")."""
    return tuple(p.strip() for item in (items or []) for p in item.split(",") if p.strip())


@with_config(
    QuantizeConfig,
    flags={
        "smooth_quant": "--smooth-quant/--no-smooth-quant",
        "bias_correction": "--bias-correction/--no-bias-correction",
    },
    parsers={"ignored": (list[str], split_patterns)},
)
@with_config(DataConfig, param="data_options")
@with_device
def quantize(
    ckpt: Path = typer.Argument(..., help="FP32 (or pruned) checkpoint to quantize."),
    data: str = typer.Option(
        ...,
        "--data",
        help="Data-set spec: calibration split for PTQ, train split for QAT, val split for top-1.",
    ),
    out_path: Path = typer.Option(..., "--out", help=OUT_HELP, dir_okay=False),
    seed: int = typer.Option(0, "--seed"),
    json_out: Path = JSON_OPTION,
    config: QuantizeConfig | None = None,
    data_options: DataConfig | None = None,
    device: DeviceConfig | None = None,
) -> None:
    """Quantize to INT8 with NNCF: PTQ on the calibration split, optional QAT with distillation.

    Under `torchrun --nproc-per-node N -m edgeattn quantize ... --qat` QAT runs with DDP (gloo),
    each process on its shard of the training data; rank 0 writes the checkpoint. --calib DIR
    calibrates on a folder of unlabeled images instead of the data set's calibration split.
    --device URL names the machine that will run the model: --cpu-int8 auto detects its CPU, and
    --placement measured times the candidate graphs there (by its agent, on onnxruntime).

    Example: edgeattn quantize exported/mvit.pt --data builtin:digits --qat --epochs 2 --out exported/mvit_int8.pt
    """
    import os

    from edgeattn.quantize import quantize_checkpoint
    from edgeattn.quantize.distributed import launched_by_torchrun

    report = quantize_checkpoint(
        ckpt, data, out_path, config, seed=seed, data_options=data_options, device=device
    )
    if launched_by_torchrun() and os.environ.get("RANK", "0") != "0":
        return  # rank 0 reports
    render(report)
    emit_json(report.to_dict(), json_out)


def render(report: QuantizeReport) -> None:
    out.print(f"placement {report.policy}: {report.policy_reason}", soft_wrap=True, markup=False)
    out.print(f"preset {report.preset}; {report.placement}", soft_wrap=True, markup=False)
    print_table(
        f"{report.model} INT8 for {report.runtime} -> {report.out}",
        ["stage", "top-1 %", "drop (pp)"],
        report.top1_rows(),
    )
    size = report.size
    int8 = f"{fmt_count(size.int8_bytes)} ({size.ratio}x smaller, {size.int8_weight_share}% of weights int8)"
    print_table(
        "size (weights)", ["precision", "bytes"], [["FP32", fmt_count(size.fp32_bytes)], ["INT8", int8]]
    )
    rows = [
        [r.layer, r.type, fmt_count(r.params), r.precision, "" if r.precision == "int8" else r.reason]
        for r in report.layers
    ]
    print_table(
        f"layers: {report.int8_layers} INT8, {report.float_layers} float",
        ["layer", "type", "params", "precision", "why float"],
        rows,
    )
    if report.max_drop is not None and report.max_drop.kept_float:
        out.print(f"--max-drop kept in float: {', '.join(report.max_drop.kept_float)}")
    m = report.measured
    if m is not None:
        print_table(
            f"measured placement ({m.timer}, input {'x'.join(map(str, m.input_shape[1:]))}; "
            f"{m.seconds:.0f} s of {m.budget_s:.0f} s budget)",
            ["group", "layers", "ms int8", "ms float", "int8 speedup (95 %)", "kept", "note"],
            m.group_rows(),
        )
        out.print(
            f"FP32 {m.fp32_ms:.2f} ms, INT8 {m.int8_ms:.2f} ms: {m.verdict}", soft_wrap=True, markup=False
        )
