"""Stage 3, quantize: INT8 checkpoints by PTQ and/or QAT from the FP32 (pruned) checkpoint."""

from __future__ import annotations

from typing import Any

from edgeattn.pipeline.schema import QUANTIZED_PRECISIONS, TARGET_PLACEMENT, Recipe
from edgeattn.pipeline.stages.common import eval_step
from edgeattn.pipeline.state import RunState
from edgeattn.pipeline.steps import Step, stage

# Options that only QAT uses (kept out of PTQ's config, so they do not change its key).
QAT_ONLY = {"epochs", "lr", "batch_size"}
DEFAULT_PLACEMENT = "onnxruntime"


def placement_for(target: str, options: dict[str, Any]) -> str:
    """The Q/DQ placement an int8 artifact for `target` is quantized for (onnx may name another)."""
    return (
        str(options.get("runtime") or TARGET_PLACEMENT[target])
        if target == "onnx"
        else TARGET_PLACEMENT[target]
    )


def placements(recipe: Recipe) -> list[str]:
    """Every placement the recipe's int8 exports need (the default one when none asks)."""
    needed = {
        placement_for(t.target, t.options)
        for t in recipe.export.targets
        if set(t.precisions) & set(QUANTIZED_PRECISIONS)
    }
    return sorted(needed or {DEFAULT_PLACEMENT}, key=lambda p: (p != DEFAULT_PLACEMENT, p))


def checkpoint_name(method: str, placement: str) -> str:
    """ptq / qat for the default placement, ptq-tensorrt etc. for others (stable as targets change)."""
    return method if placement == DEFAULT_PLACEMENT else f"{method}-{placement}"


@stage("quantize", 30, "INT8 quantization: post-training (PTQ) and/or quantization-aware training (QAT)")
def plan_quantize(state: RunState) -> list[Step]:
    r = state.recipe
    if r.quantize is None:
        return []
    source = state.fp32
    steps: list[Step] = []
    for method, opts in r.quantize.methods.items():
        for placement in placements(r):
            steps += _method_steps(state, source, method, opts, placement)
    return steps


def _method_steps(state: RunState, source, method: str, opts, placement: str) -> list[Step]:
    r = state.recipe
    qat = method == "qat"
    name = checkpoint_name(method, placement)
    out = state.stage_dir("quantize") / f"{name}.pt"
    # PTQ calibrates on the calib split of data.calib; QAT also trains, on data.train.
    data = state.loaded.data_spec(r.data.train if qat else r.data.calib_spec)
    options: dict[str, Any] = opts.model_dump(exclude=set() if qat else QAT_ONLY)
    options["ignored"] = list(options["ignored"])

    def run() -> dict[str, Any]:
        from edgeattn.quantize import quantize_checkpoint

        return quantize_checkpoint(source.path, data, out, qat=qat, seed=r.seed, runtime=placement, **options)

    def collect(summary: dict[str, Any]) -> None:
        state.stage_results[f"quantize/{name}"] = summary

    title = f"{method.upper()} of the {source.name} checkpoint for {placement} ({opts.preset} preset, {opts.calib_size} calibration images"
    quantize = Step(
        id=f"quantize/{name}",
        stage="quantize",
        title=title + (f", {opts.epochs} epochs)" if qat else ")"),
        config={**options, "qat": qat, "seed": r.seed, "runtime": placement},
        inputs={"checkpoint": source.path},
        data={"data": data},
        outputs=[out],
        run=run,
        collect=collect,
    )
    return [
        quantize,
        eval_step(state, "quantize", name, out, source=source.name, method=method, placement=placement),
    ]
