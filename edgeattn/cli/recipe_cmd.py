"""`edgeattn recipe check FILE` and `edgeattn recipe new --model NAME --target T`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.cli.common import out

recipe_app = typer.Typer(help="Check recipes and write new ones.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(recipe_app, name="recipe")


@recipe_app.command("check")
def check(files: list[Path] = typer.Argument(..., help="Recipe YAML file(s).", dir_okay=False)) -> None:
    """Check recipes without running anything: schema, files, model names, target × precision.

    Exit 0 when every recipe is runnable, 2 otherwise (each problem printed with its key path and line).

    Example: edgeattn recipe check recipes/*.yaml
    """
    from rich.markup import escape

    from edgeattn.errors import InputError
    from edgeattn.pipeline import check_recipe

    bad = 0
    for f in files:
        loaded, problems = check_recipe(f)
        if problems:
            bad += 1
            out.print(f"[red]✗[/] {escape(str(f))}: {len(problems)} problem(s)", soft_wrap=True)
            for p in problems:
                out.print(f"    {escape(str(p))}", soft_wrap=True)
        else:
            assert loaded is not None
            r = loaded.recipe
            targets = ", ".join(f"{t.target}[{'/'.join(t.precisions)}]" for t in r.export.targets)
            out.print(
                f"[green]✓[/] {escape(str(f))}: {loaded.name} — {r.model.name or r.model.checkpoint} → {escape(targets)}",
                soft_wrap=True,
            )
    if bad:
        raise InputError(
            f"{bad} of {len(files)} recipe(s) have problems (listed above)", "fix them and check again"
        )


@recipe_app.command("new")
def new(
    model: str = typer.Option(
        ..., "--model", help="Zoo name (e.g. mobilevit_xxs), timm:NAME or torchvision:NAME."
    ),
    target: list[str] = typer.Option(..., "--target", help="onnx, tensorrt or coreml (repeatable)."),
    checkpoint: Path = typer.Option(
        None, "--checkpoint", help="Start from this trained checkpoint (no train section).", dir_okay=False
    ),
    data: str = typer.Option("builtin:digits", "--data", help="Data-set spec."),
    input_size: int = typer.Option(None, "--input-size", min=1, help="Input side (default: the model's)."),
    name: str = typer.Option(None, "--name", help="Recipe name (output folder); default MODEL-TARGETS."),
    out_file: Path = typer.Option(
        None, "--out", help="Write here (default: print to stdout).", dir_okay=False
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Write a commented starting recipe (it passes `recipe check` as written).

    Example: edgeattn recipe new --model mobilevit_xxs --target onnx --target coreml --out recipes/mine.yaml
    """
    from edgeattn.fileio import check_writable, write_text
    from edgeattn.pipeline.template import new_recipe

    if out_file is not None:
        check_writable(out_file, overwrite=overwrite)
    text = new_recipe(
        model, target, checkpoint=checkpoint, data=data, input_size=input_size, name=name, out=out_file
    )
    if out_file is None:
        typer.echo(text)
        return
    write_text(out_file, text)
    out.print(f"wrote {out_file} — check it with: edgeattn recipe check {out_file}")
