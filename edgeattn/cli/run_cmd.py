"""`edgeattn run RECIPE`: the whole pipeline a recipe describes, with the exit code CI reads."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeattn.cli.common import JSON_OPTION, emit_json, out, print_table


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    recipe: Path = typer.Argument(
        ..., help="Recipe YAML (see recipes/ and `edgeattn recipe new`).", dir_okay=False
    ),
    force: bool = typer.Option(
        False, "--force", help="Redo every step, even those whose inputs did not change."
    ),
    out_root: Path = typer.Option(
        Path("exported"), "--out-root", help="Outputs go to OUT_ROOT/<recipe name>/.", file_okay=False
    ),
    json_out: Path = JSON_OPTION,
) -> None:
    """Train/prune/quantize/export/validate/bench as the recipe says; write manifest, report, JUnit.

    Steps whose inputs did not change are reused. Exit 0: all gates held; 1: a gate failed or a step
    crashed; 2: bad recipe or input (nothing is run for a bad recipe).

    Example: edgeattn run recipes/demo_quick.yaml
    """
    from rich.markup import escape

    from edgeattn.errors import GateFailure
    from edgeattn.pipeline import run_recipe

    # Step lines go to stdout (the command's output); errors and progress bars to stderr.
    result = run_recipe(
        recipe, force=force, out_root=out_root, log=lambda line: out.print(line, soft_wrap=True)
    )
    rows = []
    for a in result.artifacts:
        acc, drift, gates = a.get("accuracy") or {}, a.get("drift") or {}, a.get("gates") or {}
        lat = sorted(a.get("latency") or [], key=lambda r: r.get("batch") or 0)
        rows.append([
            a["id"], a["precision"],
            f"{acc['top1']:.2f}" if acc.get("top1") is not None else "—",
            f"{drift['top1_drop']:+.2f}" if drift.get("top1_drop") is not None else "—",
            f"{lat[0]['median_ms']:.2f}" if lat and lat[0].get("median_ms") is not None else "—",
            "—" if not gates else ("pass" if gates.get("passed") else "FAIL"),
        ])  # fmt: skip
    if rows:
        print_table(
            f"{result.name}: artifacts",
            ["artifact", "precision", "top-1 %", "Δ top-1 pp", "median ms", "gates"],
            rows,
        )
    ran, cached = result.count("ran"), result.count("cached")
    out.print(
        f"{ran} step(s) ran, {cached} reused unchanged, {len(result.skipped)} skipped — {result.seconds:.1f} s"
    )
    if result.skipped:
        out.print("[yellow]Skipped on this machine:[/]")
        for s in result.skipped:
            out.print(f"  - {escape(s['step'])}: {escape(s['reason'])}", soft_wrap=True)
    out.print(f"report: {result.report}\nmanifest: {result.manifest}\njunit: {result.junit}")
    emit_json(
        {
            "manifest": str(result.manifest),
            "passed": result.passed,
            "steps": [s.__dict__ for s in result.steps],
            "skipped": result.skipped,
        },
        json_out,
    )
    if not result.passed:
        first = result.gate_failures[0]
        raise GateFailure(
            f"{len(result.gate_failures)} gate(s) failed, first: {first['artifact']} {first['message']}",
            f"see {result.report} (JUnit: {result.junit})",
        )
