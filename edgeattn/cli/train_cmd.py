"""`edgeattn train`: train (or distil) a baseline classifier and save a checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.cli.common import JSON_OPTION, OUT_HELP, emit_json, print_table


def register(app: typer.Typer) -> None:
    app.command("train")(train)


def parse_options(pairs: list[str]) -> dict:
    """`key=value` pairs (values parsed as YAML scalars) -> dict."""
    import yaml

    from edgeattn.errors import InputError

    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(
                f"bad --option {pair!r}", "write it as key=value, e.g. --option attention=softmax"
            )
        options[key.strip()] = yaml.safe_load(value)
    return options


def train(
    model: str = typer.Option(..., "--model", help="Zoo name, e.g. mobilevit_xxs, attn_vgg11."),
    data: str = typer.Option(
        "builtin:digits", "--data", help="Data-set spec (builtin:digits, folder, .npz)."
    ),
    out: Path = typer.Option(..., "--out", help=OUT_HELP, dir_okay=False),
    input_size: int = typer.Option(
        None, "--input-size", help="Input side (default: the model's; 64 is quick)."
    ),
    epochs: int = typer.Option(8, "--epochs", min=1),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    lr: float = typer.Option(2e-3, "--lr", min=0.0),
    option: list[str] = typer.Option(
        None, "--option", help="Model option key=value (e.g. attention=softmax, num_heads=2, width=0.5)."
    ),
    teacher: Path = typer.Option(
        None, "--teacher", help="Distil from this checkpoint (same classes and input size).", exists=False
    ),
    seed: int = typer.Option(0, "--seed"),
    json_out: Path = JSON_OPTION,
) -> None:
    """Train a baseline with AdamW, cosine LR, label smoothing and light augmentation.

    Example: edgeattn train --model mobilevit_xxs --data builtin:digits --input-size 64 --epochs 8 --out exported/mvit.pt
    """
    from edgeattn.fileio import check_writable
    from edgeattn.training_job import train_checkpoint

    check_writable(out)
    result = train_checkpoint(
        model=model,
        data=data,
        out=out,
        input_size=input_size,
        options=parse_options(option),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        teacher=teacher,
        seed=seed,
    )
    print_table(
        f"trained {model} -> {out}",
        ["split", "top-1 %", "top-5 %", "images"],
        [["val", f"{result['val']['top1']:.2f}", f"{result['val']['top5']:.2f}", result["val"]["n"]]],
    )
    emit_json(result, json_out)
