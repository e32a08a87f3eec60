"""Stage 3, quantize: INT8 checkpoints by PTQ and/or QAT from the FP32 (pruned) checkpoint."""

from __future__ import annotations

from typing import Any

from edgeattn.pipeline.schema import QUANTIZED_PRECISIONS, QuantMethod, Recipe
from edgeattn.pipeline.stages.common import device_step_config, eval_step
from edgeattn.pipeline.state import CheckpointInfo, RunState
from edgeattn.pipeline.steps import Step, stage
from edgeattn.quantize.config import QuantizeConfig
from edgeattn.quantize.result import QuantizeReport

DEFAULT_PLACEMENT = QuantizeConfig.model_fields["runtime"].default


def placement_for(target: str, options: dict[str, Any]) -> str:
    """The Q/DQ placement an int8 artifact for `target` is quantized for (the exporter decides)."""
    from edgeattn.export import exporter_for

    return exporter_for(target).int8_placement(options)


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


def _method_steps(
    state: RunState, source: CheckpointInfo, method: str, opts: QuantMethod, placement: str
) -> list[Step]:
    r = state.recipe
    qat = method == "qat"
    name = checkpoint_name(method, placement)
    out = state.stage_dir("quantize") / f"{name}.pt"
    # PTQ calibrates on the calib split of data.calib; QAT also trains, on data.train.
    data = state.loaded.data_spec(r.data.train if qat else r.data.calib_spec)
    config = opts.config(qat=qat, runtime=placement)
    # Options PTQ does not read stay out of its key, so changing QAT's epochs does not redo PTQ.
    key = config.model_dump(mode="json", exclude=set() if qat else set(QuantizeConfig.QAT_ONLY))
    # cpu_int8 auto resolves on the machine that will run the model: here, its result is part of the
    # key; on a device (quantize.device), the device's URL, options and agent are.
    from edgeattn.quantize.placement import choose_policy

    assert r.quantize is not None
    device = state.loaded.device(r.quantize.device)
    if device.in_process:
        key["placement_policy"] = choose_policy(placement, config.cpu_int8).label
    else:
        key.update(device_step_config(state, r.quantize.device))

    def run() -> dict[str, Any]:
        from edgeattn.quantize import quantize_checkpoint

        return quantize_checkpoint(
            source.path, data, out, config, seed=r.seed, device=device, device_label=r.quantize.device
        ).to_dict()

    def collect(summary: dict[str, Any]) -> None:
        state.stage_results[f"quantize/{name}"] = QuantizeReport.model_validate(summary)

    title = f"{method.upper()} of the {source.name} checkpoint for {placement} ({opts.preset} preset, {opts.calib_size} calibration images"
    quantize = Step(
        id=f"quantize/{name}",
        stage="quantize",
        title=title + (f", {opts.epochs} epochs)" if qat else ")"),
        config={**key, "seed": r.seed},
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
