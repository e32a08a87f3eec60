"""Stage 5, validate: each artifact against its FP32 reference — accuracy, drift, gates, per-layer.

A failed gate is a result, not an error: the step is recorded (and cached) with `passed: false`, the
run goes on, and `edgeattn run` exits 1 at the end. A runtime this machine lacks (Core ML predictions
off macOS without the reference executor) raises `UnavailableError`; the runner records the skip.
`validate.device` names where the artifacts run (one step per artifact and device; the reference
always runs here); the first device's report is the artifact's headline accuracy and drift.
"""

from __future__ import annotations

from typing import Any

from edgeattn.pipeline.stages.common import device_step_config, device_suffix, runs_on
from edgeattn.pipeline.state import ArtifactInfo, RunState
from edgeattn.pipeline.steps import Step, stage


def reference_for(state: RunState, art: ArtifactInfo):
    """The FP32 checkpoint an artifact is judged against (recipe: validate.reference)."""
    if state.recipe.validate_cfg.reference == "baseline":
        return state.checkpoints["baseline"]
    source = state.checkpoints[art.source]
    return state.checkpoints[source.source] if source.kind != "fp32" and source.source else source


def layerwise_applies(art: ArtifactInfo) -> bool:
    """Per-layer drift compares the INT8 tensors of a QDQ ONNX with FP32: other artifacts have none."""
    return art.path.suffix.lower() == ".onnx" and art.precision.startswith("int8")


@stage("validate", 50, "compare every artifact with its FP32 reference and check the gates")
def plan_validate(state: RunState) -> list[Step]:
    v = state.recipe.validate_cfg
    if not v.enabled:
        return []
    data = state.loaded.data_spec(state.recipe.data.eval_spec)
    steps = []
    for art in list(state.artifacts.values()):
        for i, device in enumerate(v.device):
            reason = runs_on(state, device, art)
            if reason:
                state.skip(f"validate/{art.id}{device_suffix(device)}", reason)
                continue
            steps.append(_step(state, art, device, data, first=i == 0))
    return steps


def _step(state: RunState, art: ArtifactInfo, device: str, data: str, first: bool) -> Step:
    v = state.recipe.validate_cfg
    ref = reference_for(state, art)
    suffix = device_suffix(device)
    folder = state.stage_dir("validate") / f"{art.id}{suffix}"
    files = {
        "json_out": folder / "report.json",
        "junit": folder / "junit.xml",
        "markdown": folder / "report.md",
    }
    gates = v.gates_for(art.precision)
    layerwise = v.layerwise and layerwise_applies(art) and first  # host-side analysis: once
    explain = v.explain if first else 0  # heat maps come from the torch checkpoints: once
    config = {
        "gates": gates,
        "split": v.split,
        "limit": v.limit,
        "layerwise": layerwise,
        "explain": explain,
        "reference": ref.name,
        **device_step_config(state, device),
    }

    def run() -> dict[str, Any]:
        from edgeattn.validate import Gates, validate_artifact

        report = validate_artifact(
            art.path, ref.path, data, gates=Gates.from_dict(gates), layerwise=layerwise, split=v.split,
            limit=v.limit, explain=explain, device=state.loaded.device(device), device_label=device, **files,
        )  # fmt: skip
        return report.to_dict()

    def collect(report: dict[str, Any]) -> None:
        art.validations[device] = report
        if art.validation is None:
            art.validation = report
        if report.get("device"):
            state.devices[device] = report["device"]

    where = "" if device == "local" else f" on {device}"
    return Step(
        id=f"validate/{art.id}{suffix}",
        stage="validate",
        title=f"validate {art.id}{where} against the {ref.name} checkpoint on {state.recipe.data.eval_spec} [{v.split}]",
        config=config,
        inputs={"artifact": art.path, "reference": ref.path},
        data={"eval": data},
        outputs=list(files.values()),
        run=run,
        collect=collect,
    )
