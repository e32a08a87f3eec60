"""Stage 5, validate: each artifact against its FP32 reference — accuracy, drift, gates, per-layer.

A failed gate is a result, not an error: the step is recorded (and cached) with `passed: false`, the
run goes on, and `edgeattn run` exits 1 at the end. A runtime this machine lacks (Core ML predictions
off macOS without the reference executor) raises `UnavailableError`; the runner records the skip.
"""

from __future__ import annotations

from typing import Any

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
        ref = reference_for(state, art)
        folder = state.stage_dir("validate") / art.id
        files = {
            "json_out": folder / "report.json",
            "junit": folder / "junit.xml",
            "markdown": folder / "report.md",
        }
        gates = v.gates_for(art.precision)
        layerwise = v.layerwise and layerwise_applies(art)
        config = {
            "gates": gates,
            "split": v.split,
            "limit": v.limit,
            "layerwise": layerwise,
            "reference": ref.name,
        }

        def run(art=art, ref=ref, files=files, gates=gates, layerwise=layerwise) -> dict[str, Any]:
            from edgeattn.validate import Gates, validate_artifact

            report = validate_artifact(
                art.path, ref.path, data, gates=Gates.from_dict(gates), layerwise=layerwise, split=v.split,
                limit=v.limit, **files,
            )  # fmt: skip
            return report.to_dict()

        def collect(report: dict[str, Any], art=art) -> None:
            art.validation = report

        steps.append(
            Step(
                id=f"validate/{art.id}",
                stage="validate",
                title=f"validate {art.id} against the {ref.name} checkpoint on {state.recipe.data.eval_spec} [{v.split}]",
                config=config,
                inputs={"artifact": art.path, "reference": ref.path},
                data={"eval": data},
                outputs=list(files.values()),
                run=run,
                collect=collect,
            )
        )
    return steps
