"""Stage 6, bench: latency of every artifact on the runtime that will serve it, in one run.

The FP32 ONNX (if exported) is the baseline every other artifact's speed is compared with. A runtime
this machine lacks is listed as skipped, with the reason, by the benchmark itself.
"""

from __future__ import annotations

from typing import Any

from edgeattn.pipeline.state import ArtifactInfo, RunState
from edgeattn.pipeline.steps import Step, stage


def servable(
    arts: list[ArtifactInfo], runtime: str
) -> tuple[list[ArtifactInfo], list[tuple[ArtifactInfo, str]]]:
    """The artifacts `runtime` can run (all for auto), and the others with their kind: a recipe may
    time, say, every ONNX also in the browser (`runtimes: [auto, ort-web]`) beside Core ML exports."""
    from edgeattn.runtime import RUNNERS, artifact_kind

    if runtime == "auto":
        return list(arts), []
    served, rest = [], []
    kinds = RUNNERS.get(runtime).kinds_served()
    for a in arts:
        kind = artifact_kind(a.path)
        if kind in kinds:
            served.append(a)
        else:
            rest.append((a, kind))
    return served, rest


@stage("bench", 60, "measure latency of every artifact (FP32 vs INT8 in the same run)")
def plan_bench(state: RunState) -> list[Step]:
    b = state.recipe.bench
    arts = list(state.artifacts.values())
    if not b.enabled or not arts:
        return []
    folder = state.stage_dir("bench")
    baseline = next((a for a in arts if a.target == "onnx" and a.precision == "fp32"), arts[0])
    labels = {str(a.path): a.id for a in arts}
    extras = {str(a.path): {"top1": a.validation["metrics"]["artifact_top1"]} for a in arts if a.validation}
    json_out = folder / "bench.json"
    plots = {rt: folder / (f"bench-{rt}.png" if len(b.runtimes) > 1 else "bench.png") for rt in b.runtimes}
    config = {
        **b.model_dump(mode="json", exclude={"enabled", "runtime"}),
        "baseline": baseline.id,
        "artifacts": [a.id for a in arts],
    }

    def run() -> dict[str, Any]:
        from edgeattn.bench import Skipped, bench_artifacts, write_bench_plot
        from edgeattn.fileio import write_json

        reports = {}
        for rt in b.runtimes:
            served, not_served = servable(arts, rt)
            report = bench_artifacts(
                [a.path for a in served], b.config(rt), labels=labels, extras=extras,
                baseline=baseline.path if baseline in served else None,
                title=f"{state.loaded.name}: latency ({rt})",
            )  # fmt: skip
            for a, kind in not_served:
                report.skipped.append(Skipped(str(a.path), a.id, rt, f"{rt} does not run {kind} artifacts"))
            write_bench_plot(report, plots[rt])
            reports[rt] = report.to_dict()
        write_json(json_out, {"format": "edgeattn.pipeline.bench", "reports": reports})
        return {"reports": reports}

    def collect(result: dict[str, Any]) -> None:
        state.bench = result
        state.bench_plots = list(plots.values())
        by_path = {str(a.path): a for a in arts}
        for rt, report in result.get("reports", {}).items():
            for row in report.get("rows", []):
                art = by_path.get(str(row.get("artifact")))
                if art is not None:
                    art.latency.append({**row, "requested_runtime": rt})
            for skip in report.get("skipped", []):
                state.skip(
                    f"bench/{skip.get('label') or skip.get('artifact')}",
                    f"{skip.get('runtime')}: {skip.get('reason')}",
                )

    return [
        Step(
            id="bench/latency",
            stage="bench",
            title=f"benchmark {len(arts)} artifact(s) on {', '.join(b.runtimes)} (batches {list(b.batches)}, {b.threads} threads)",
            config=config,
            inputs={a.id: a.path for a in arts},
            outputs=[json_out, *plots.values()],
            run=run,
            collect=collect,
        )
    ]
