"""`edgeattn import`: wrap a plain state dict (a timm/torchvision release or a user's fine-tune) into an
edgeattn checkpoint, so every later stage knows the architecture and input spec."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.cli.common import OUT_HELP, out


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)


def import_command(
    state_dict: Path = typer.Argument(
        ...,
        help="A .pth/.pt/.bin state dict (tensors only, read with weights_only=True) or a .safetensors file.",
    ),
    model: str = typer.Option(
        ..., "--model", help="Zoo name, timm:NAME or torchvision:NAME the weights belong to."
    ),
    num_classes: int = typer.Option(1000, "--num-classes"),
    input_size: int = typer.Option(
        None, "--input-size", help="Input side (EfficientFormer biases are resized to fit)."
    ),
    option: list[str] = typer.Option(
        None, "--option", help="Model option key=value, as the weights were built (e.g. depth=6)."
    ),
    out_path: Path = typer.Option(..., "--out", help=OUT_HELP, dir_okay=False),
) -> None:
    """Import a state dict (loaded without executing code) as an edgeattn checkpoint.

    Example: edgeattn import mobilevit_xxs.pth --model mobilevit_xxs --out exported/mvit_in1k.pt
    """
    from edgeattn.checkpoint import import_state_dict, save_checkpoint
    from edgeattn.cli.train_cmd import parse_options
    from edgeattn.fileio import check_writable
    from edgeattn.models import ModelConfig, model_spec

    check_writable(out_path)
    spec = model_spec(model)
    config = ModelConfig(
        model, num_classes, input_size or spec.default_input_size, parse_options(option or [])
    )
    handle = import_state_dict(state_dict, config)
    save_checkpoint(handle, out_path)
    out.print(f"imported {state_dict} as {model} -> {out_path}")
