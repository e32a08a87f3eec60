"""`edgeattn eval`: top-1/top-5 of a checkpoint (or exported artifact) on a data set."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.cli.common import JSON_OPTION, emit_json, print_table


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)


def eval_command(
    artifact: Path = typer.Argument(..., help="Checkpoint (.pt) to evaluate."),
    data: str = typer.Option("builtin:digits", "--data", help="Data-set spec."),
    split: str = typer.Option("val", "--split", help="train, calib or val."),
    json_out: Path = JSON_OPTION,
) -> None:
    """Evaluate top-1/top-5 on a split of a data set.

    Example: edgeattn eval exported/mvit.pt --data builtin:digits --json eval.json
    """
    from edgeattn.evaluation import evaluate_artifact

    result = evaluate_artifact(artifact, data, split)
    print_table(
        f"{artifact.name} on {data} [{split}] — {result['runtime']}",
        ["metric", "value"],
        [["top-1 %", f"{result['top1']:.2f}"], ["top-5 %", f"{result['top5']:.2f}"], ["images", result["n"]]],
    )
    emit_json(result, json_out)
