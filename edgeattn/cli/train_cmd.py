"""`edgeattn train`: train (or distil) a baseline classifier and save a checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.cli.common import JSON_OPTION, OUT_HELP, emit_json, print_table
from edgeattn.cli.common import out as out_console
from edgeattn.cli.options import with_config
from edgeattn.data.config import DataConfig
from edgeattn.train.config import TrainConfig


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


@with_config(TrainConfig)
@with_config(DataConfig, param="data_options")
def train(
    model: str = typer.Option(
        None,
        "--model",
        help="Zoo name (mobilevit_xxs, attn_vgg11), timm:NAME or torchvision:NAME (with --init: the checkpoint's).",
    ),
    data: str = typer.Option(
        "builtin:digits", "--data", help="Data-set spec (builtin:digits, folder, .npz)."
    ),
    out: Path = typer.Option(..., "--out", help=OUT_HELP, dir_okay=False),
    input_size: int = typer.Option(
        None, "--input-size", help="Input side (default: the model's; 64 is quick)."
    ),
    option: list[str] = typer.Option(
        None, "--option", help="Model option key=value (e.g. attention=softmax, num_heads=2, width=0.5)."
    ),
    seed: int = typer.Option(0, "--seed"),
    json_out: Path = JSON_OPTION,
    config: TrainConfig | None = None,
    data_options: DataConfig | None = None,
) -> None:
    """Train a baseline with AdamW, cosine LR, label smoothing and augmentation (timm's train transform
    on image folders and file lists; --augment chooses); or fine-tune a checkpoint (--init), fully or
    with LoRA on the attention projections (--lora RANK; the adapters are merged before saving, so the
    checkpoint is the plain model).

    Examples:
      edgeattn train --model mobilevit_xxs --data builtin:digits --input-size 64 --epochs 8 --out exported/mvit.pt
      edgeattn train --init exported/mvit.pt --lora 8 --data builtin:digits --epochs 2 --out exported/mvit-lora.pt
    """
    from edgeattn.fileio import check_writable
    from edgeattn.train import train_checkpoint

    check_writable(out)
    result = train_checkpoint(
        model,
        data,
        out,
        config,
        input_size=input_size,
        options=parse_options(option),
        seed=seed,
        data_options=data_options,
    )
    val, params = result.val, result.params
    print_table(
        f"trained {result.model} -> {out}",
        ["split", "top-1 %", "top-5 %", "images"],
        [["val", f"{val.top1:.2f}", f"{val.top5:.2f}", val.n]],
    )
    how = f"LoRA rank {result.lora} + classifier" if result.lora else "all"
    out_console.print(
        f"trainable parameters ({how}): {params['trainable']:,} of {params['total']:,} ({params['percent']:.2f} %)"
    )
    emit_json(result.to_dict(), json_out)
