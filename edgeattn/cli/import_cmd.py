"""`edgeattn import`: wrap a plain state dict (e.g. a timm release) into an edgeattn checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.cli.common import OUT_HELP, out


def register(app: typer.Typer) -> None:
    app.command("import")(import_command)


def import_command(
    state_dict: Path = typer.Argument(..., help="A .pth/.pt/.bin file holding a state dict (tensors only)."),
    model: str = typer.Option(..., "--model", help="Zoo name the weights belong to."),
    num_classes: int = typer.Option(1000, "--num-classes"),
    input_size: int = typer.Option(
        None, "--input-size", help="Input side (EfficientFormer biases are resized to fit)."
    ),
    out_path: Path = typer.Option(..., "--out", help=OUT_HELP, dir_okay=False),
) -> None:
    """Import a timm state dict (loaded with weights_only=True) as an edgeattn checkpoint.

    Example: edgeattn import mobilevit_xxs.pth --model mobilevit_xxs --out exported/mvit_in1k.pt
    """
    from edgeattn.checkpoint import import_state_dict, save_checkpoint
    from edgeattn.fileio import check_writable
    from edgeattn.models import ModelConfig, model_spec

    check_writable(out_path)
    spec = model_spec(model)
    handle = import_state_dict(
        state_dict, ModelConfig(model, num_classes, input_size or spec.default_input_size)
    )
    save_checkpoint(handle, out_path)
    out.print(f"imported {state_dict} as {model} -> {out_path}")
