"""`edgeattn models` and `edgeattn profile`: what the zoo holds and what a model costs."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.cli.common import JSON_OPTION, emit_json, out, print_table
from edgeattn.reporting import fmt_count


def register(app: typer.Typer) -> None:
    app.command("models")(models)
    app.command("profile")(profile)


def models(
    search: str = typer.Option(
        None,
        "--search",
        help="List timm:/torchvision: names containing this text that this install can build.",
    ),
    json_stdout: bool = typer.Option(False, "--json-stdout", help="Print JSON instead of a table."),
    json_out: Path = JSON_OPTION,
) -> None:
    """List the model zoo: parameters, MACs at the default input size, attention blocks and heads.

    Any timm model (timm:NAME) and any torchvision classifier (torchvision:NAME) works too.

    Example: edgeattn models --json models.json
    Example: edgeattn models --search deit_tiny
    """
    from edgeattn.models import MODEL_SOURCES, ModelConfig, all_model_specs, build_model
    from edgeattn.models.profile import profile_model

    if search is not None:
        found = [
            {"name": f"{prefix}:{arch}", "source": prefix}
            for prefix, source in MODEL_SOURCES.items()
            for arch in source.search(search)
        ]
        if not json_stdout:
            print_table(f"models matching {search!r}", ["model", "source"], [list(f.values()) for f in found])
            out.print(f"{len(found)} names; use any of them wherever a model name is accepted")
        emit_json(found, json_out, stdout=json_stdout)
        return
    rows, data = [], []
    for spec in all_model_specs():
        model = build_model(ModelConfig(spec.name, 1000, spec.default_input_size))
        p = profile_model(model, spec.name, spec.family, spec.default_input_size)
        data.append({**p.to_dict(), "description": spec.description, "default_options": spec.default_options})
        rows.append(
            [
                spec.name,
                spec.family,
                fmt_count(p.params),
                fmt_count(p.macs),
                spec.default_input_size,
                p.attention_blocks,
                p.heads,
            ]
        )
    if not json_stdout:
        print_table(
            "edgeattn model zoo (1000 classes)",
            ["model", "family", "params", "MACs", "input", "attn blocks", "heads"],
            rows,
        )
        sources = ", ".join(f"{p}:NAME ({src.description})" for p, src in MODEL_SOURCES.items())
        out.print(f"also: {sources}; find names with `edgeattn models --search TEXT`")
    emit_json(data, json_out, stdout=json_stdout)


def profile(
    model: str = typer.Argument(..., help="A zoo name (see `edgeattn models`) or a checkpoint file."),
    input_size: int = typer.Option(None, "--input-size", help="Input side in pixels (default: the model's)."),
    num_classes: int = typer.Option(1000, "--num-classes", help="Classes, for zoo names."),
    option: list[str] = typer.Option(
        None, "--option", help="Model option key=value, for zoo names (e.g. depth=2)."
    ),
    json_stdout: bool = typer.Option(False, "--json-stdout", help="Print JSON instead of tables."),
    json_out: Path = JSON_OPTION,
) -> None:
    """Parameters, MACs and heads per attention block of one model or checkpoint.

    Example: edgeattn profile mobilevit_xxs --input-size 256
    Example: edgeattn profile timm:deit_tiny_patch16_224 --input-size 32 --option depth=2
    """
    from edgeattn.checkpoint import open_model
    from edgeattn.cli.train_cmd import parse_options
    from edgeattn.models import model_spec
    from edgeattn.models.profile import profile_model

    handle = open_model(model, input_size, num_classes, parse_options(option or []))
    size = input_size or handle.config.input_size
    p = profile_model(handle.module, handle.config.name, model_spec(handle.config.name).family, size)
    data = {**p.to_dict(), "config": handle.config.to_dict(), "kind": handle.kind}
    if not json_stdout:
        print_table(
            f"{handle.config.name} at {size}x{size}",
            ["metric", "value"],
            [
                ["params", fmt_count(p.params)],
                ["MACs", fmt_count(p.macs)],
                ["attention blocks", p.attention_blocks],
                ["heads", p.heads],
            ],
        )
        rows = [[path, n] for path, n in p.heads_per_block.items()]
        rows += [[path, f"0 ({kind}: no heads)"] for path, kind in p.headless_blocks.items()]
        if rows:
            print_table("heads per attention block", ["block", "heads"], rows)
        else:
            out.print("no attention blocks")
    emit_json(data, json_out, stdout=json_stdout)
