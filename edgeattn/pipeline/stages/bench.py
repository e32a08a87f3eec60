"""Stage 6, bench: latency of every artifact on the runtime that will serve it, in one run per device.

The FP32 ONNX (if exported) is the baseline every other artifact's speed is compared with. A runtime
this machine lacks is listed as skipped, with the reason, by the benchmark itself. `bench.device`
names where to time (`local` and/or devices from `devices:`): one step per device, each row of the
results saying where it was measured; artifacts a device cannot run (checkpoints, Core ML packages)
are skipped there with the reason.
"""

from __future__ import annotations

from typing import Any

from edgeattn.pipeline.stages.common import device_step_config, device_suffix, runs_on
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
    if not b.enabled or not state.artifacts:
        return []
    return [step for name in b.device for step in _device_steps(state, name)]


def _device_steps(state: RunState, device: str) -> list[Step]:
    b = state.recipe.bench
    suffix = device_suffix(device)
    arts = []
    for a in state.artifacts.values():
        reason = runs_on(state, device, a)
        if reason:
            state.skip(f"bench{suffix}/{a.id}", reason)
        else:
            arts.append(a)
    if not arts:
        return []
    folder = state.stage_dir("bench")
    baseline = next((a for a in arts if a.target == "onnx" and a.precision == "fp32"), arts[0])
    labels = {str(a.path): a.id for a in arts}
    extras = {str(a.path): {"top1": a.validation["metrics"]["artifact_top1"]} for a in arts if a.validation}
    json_out = folder / f"bench{suffix}.json"
    plots = {
        rt: folder / (f"bench{suffix}-{rt}.png" if len(b.runtimes) > 1 else f"bench{suffix}.png")
        for rt in b.runtimes
    }
    config = {
        **b.model_dump(mode="json", exclude={"enabled", "runtime", "device"}),
        "baseline": baseline.id,
        "artifacts": [a.id for a in arts],
        **device_step_config(state, device),
    }
    where = "" if device == "local" else f" on {device}"

    def run() -> dict[str, Any]:
        from edgeattn.bench import Skipped, bench_artifacts, write_bench_plot
        from edgeattn.fileio import write_json

        reports = {}
        for rt in b.runtimes:
            served, not_served = servable(arts, rt)
            report = bench_artifacts(
                [a.path for a in served], b.config(rt), labels=labels, extras=extras,
                baseline=baseline.path if baseline in served else None,
                title=f"{state.loaded.name}: latency ({rt}){where}", device=state.loaded.device(device),
                device_label=device,
            )  # fmt: skip
            for a, kind in not_served:
                report.skipped.append(Skipped(str(a.path), a.id, rt, f"{rt} does not run {kind} artifacts"))
            write_bench_plot(report, plots[rt])
            reports[rt] = report.to_dict()
        write_json(json_out, {"format": "edgeattn.pipeline.bench", "device": device, "reports": reports})
        return {"device": device, "reports": reports}

    def collect(result: dict[str, Any]) -> None:
        state.bench = result if state.bench is None else state.bench
        state.bench_plots += list(plots.values())
        by_path = {str(a.path): a for a in arts}
        for rt, report in result.get("reports", {}).items():
            if report.get("device"):
                state.devices[device] = report["device"]
            for row in report.get("rows", []):
                art = by_path.get(str(row.get("artifact")))
                if art is not None:
                    art.latency.append({**row, "requested_runtime": rt, "device": device})
            for skip in report.get("skipped", []):
                state.skip(
                    f"bench{suffix}/{skip.get('label') or skip.get('artifact')}",
                    f"{skip.get('runtime')}: {skip.get('reason')}",
                )

    return [
        Step(
            id=f"bench/latency{suffix}",
            stage="bench",
            title=f"benchmark {len(arts)} artifact(s){where} on {', '.join(b.runtimes)} (batches {list(b.batches)}, {b.threads} threads)",
            config=config,
            inputs={a.id: a.path for a in arts},
            outputs=[json_out, *plots.values()],
            run=run,
            collect=collect,
        )
    ]
