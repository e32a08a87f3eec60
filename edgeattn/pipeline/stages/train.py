"""Stage 1, train: the baseline FP32 checkpoint — trained from the recipe, or the given checkpoint."""

from __future__ import annotations

from typing import Any

from edgeattn.pipeline.stages.common import eval_step
from edgeattn.pipeline.state import RunState
from edgeattn.pipeline.steps import Step, stage
from edgeattn.train.config import TrainConfig
from edgeattn.train.job import TrainResult


@stage("train", 10, "train the baseline (or take model.checkpoint as it is)")
def plan_train(state: RunState) -> list[Step]:
    r, loaded = state.recipe, state.loaded
    if r.model.checkpoint is not None:
        ckpt = loaded.path(r.model.checkpoint)
        return [eval_step(state, "train", "baseline", ckpt, source=None)]

    out = state.stage_dir("train") / "baseline.pt"
    t = r.train
    assert t is not None  # the recipe check guarantees a train section without a checkpoint
    teacher = loaded.path(t.teacher)
    train_config = TrainConfig.build(t, teacher=teacher)
    config: dict[str, Any] = {
        "model": r.model.name,
        "input_size": r.model.input_size,
        "num_classes": r.model.num_classes,
        "options": r.model.options,
        **t.model_dump(mode="json", exclude={"teacher"}),
        "seed": r.seed,
    }

    def run() -> dict[str, Any]:
        from edgeattn.data import load_split
        from edgeattn.errors import InputError
        from edgeattn.train import train_checkpoint

        data = loaded.data_spec(r.data.train)
        if r.model.num_classes is not None:
            classes = load_split(data, "train", r.model.input_size or 64).num_classes
            if classes != r.model.num_classes:
                raise InputError(
                    f"model.num_classes is {r.model.num_classes} but {r.data.train} has {classes} classes",
                    "drop model.num_classes or fix it",
                )
        result = train_checkpoint(
            str(r.model.name), data, out, train_config, input_size=r.model.input_size,
            options=dict(r.model.options), seed=r.seed,
        )  # fmt: skip
        result.seconds = round(result.seconds, 1)
        return result.to_dict()

    train = Step(
        id="train/baseline",
        stage="train",
        title=f"train {r.model.name} for {t.epochs} epochs on {r.data.train}",
        config=config,
        inputs={"teacher": teacher} if teacher else {},
        data={"train": loaded.data_spec(r.data.train)},
        outputs=[out],
        run=run,
        collect=lambda result: state.stage_results.__setitem__("train", TrainResult.model_validate(result)),
    )
    return [train, eval_step(state, "train", "baseline", out, source=None)]
