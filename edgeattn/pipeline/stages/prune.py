"""Stage 2, prune: remove attention heads from the baseline (skipped without a prune section)."""

from __future__ import annotations

from typing import Any

from edgeattn.pipeline.stages.common import eval_step
from edgeattn.pipeline.state import RunState
from edgeattn.pipeline.steps import Step, stage
from edgeattn.prune.result import PruneReport


@stage("prune", 20, "remove the least important attention heads, optionally fine-tune")
def plan_prune(state: RunState) -> list[Step]:
    r = state.recipe
    if not r.prune_enabled:
        return []
    p = r.prune
    assert p is not None
    base = state.checkpoints["baseline"]
    folder = state.stage_dir("prune")
    out, report_dir = folder / "pruned.pt", folder / "report"
    data = state.loaded.data_spec(r.data.train)
    config = p.config()
    options: dict[str, Any] = config.model_dump(mode="json")

    def run() -> dict[str, Any]:
        from edgeattn.prune import prune_checkpoint

        return prune_checkpoint(base.path, data, out, config, report_dir=report_dir, seed=r.seed).to_dict()

    def collect(report: dict[str, Any]) -> None:
        state.prune_report = PruneReport.model_validate(report)

    amount = ", ".join(f"{k} {v}" for k, v in config.amounts().items())
    prune = Step(
        id="prune/pruned",
        stage="prune",
        title=f"prune heads ({amount}, {p.importance} importance, {p.finetune_epochs} fine-tune epochs)",
        config={**options, "seed": r.seed},
        inputs={"checkpoint": base.path},
        data={"train": data},
        outputs=[out, report_dir],
        run=run,
        collect=collect,
    )
    return [prune, eval_step(state, "prune", "pruned", out, source="baseline")]
