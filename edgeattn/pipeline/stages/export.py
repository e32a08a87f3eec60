"""Stage 4, export: every target × precision of the recipe, with the artifact's manifest beside it.

fp32/fp16 artifacts come from the FP32 (pruned) checkpoint; int8 artifacts from each quantized
checkpoint (one per quantization method). A target this machine lacks (TensorRT without a GPU) raises
`UnavailableError` after writing what it can (the ONNX for trtexec); the runner records the skip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeattn.export.config import ExportConfig, ExportShape
from edgeattn.pipeline.schema import QUANTIZED_PRECISIONS
from edgeattn.pipeline.state import ArtifactInfo, CheckpointInfo, RunState
from edgeattn.pipeline.steps import Step, stage


def artifact_suffix(target: str) -> str:
    from edgeattn.export import exporter_for

    return exporter_for(target).suffixes[0]


def export_jobs(state: RunState) -> list[tuple[str, str, str, CheckpointInfo, dict[str, Any]]]:
    """(artifact id, target, precision, source checkpoint, options) for every artifact to export."""
    jobs = []
    from edgeattn.pipeline.stages.quantize import placement_for

    for t in state.recipe.export.targets:
        for precision in t.precisions:
            if precision in QUANTIZED_PRECISIONS:  # one artifact per method, quantized for this target
                placement = placement_for(t.target, t.options)
                for src in state.quantized:
                    if src.placement == placement:
                        jobs.append(
                            (
                                f"{t.target}-{precision}-{src.method}",
                                t.target,
                                precision,
                                src,
                                dict(t.options),
                            )
                        )
            else:
                jobs.append((f"{t.target}-{precision}", t.target, precision, state.fp32, dict(t.options)))
    return jobs


@stage("export", 40, "export every target × precision, each with its manifest")
def plan_export(state: RunState) -> list[Step]:
    e = state.recipe.export
    steps = []
    for art_id, target, precision, src, options in export_jobs(state):
        out = state.stage_dir("export") / f"{art_id}{artifact_suffix(target)}"
        data = state.loaded.data_spec(state.recipe.data.calib_spec)
        shape = e.model_dump(include=set(ExportShape.model_fields))
        export_config = ExportConfig.build(**shape, precision=precision, options=options)
        config = {"target": target, **export_config.model_dump(mode="json")}

        def run(out=out, target=target, src=src, export_config=export_config, data=data) -> dict[str, Any]:
            from edgeattn.export import export_artifact

            manifest = export_artifact(src.path, target, out, export_config, data=data, overwrite=True)
            return {"manifest": manifest.to_dict()}

        def collect(
            result: dict[str, Any], art_id=art_id, out=out, target=target, precision=precision, src=src
        ) -> None:
            manifest = result.get("manifest", {})
            state.artifacts[art_id] = ArtifactInfo(
                id=art_id, path=out, target=target, precision=precision, source=src.name,
                sha256=manifest.get("sha256", ""), size_bytes=_size(out), manifest=manifest,
            )  # fmt: skip

        steps.append(
            Step(
                id=f"export/{art_id}",
                stage="export",
                title=f"export the {src.name} checkpoint to {target} {precision}",
                config=config,
                inputs={"checkpoint": src.path},
                data={"calib": data},
                outputs=[out, out.with_name(out.name + ".json")],
                run=run,
                collect=collect,
            )
        )
    return steps


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0
