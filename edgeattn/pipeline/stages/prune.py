"""Stage 2, prune: remove attention heads from the baseline (skipped without a prune section)."""

from __future__ import annotations

from typing import Any

from edgeattn.pipeline.stages.common import eval_step
from edgeattn.pipeline.state import RunState
from edgeattn.pipeline.steps import Step, stage


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
    options: dict[str, Any] = p.model_dump(exclude={"enabled"})

    def run() -> dict[str, Any]:
        from edgeattn.prune import prune_checkpoint

        report = prune_checkpoint(base.path, data, out, report_dir=report_dir, seed=r.seed, **options)
        return report

    def collect(report: dict[str, Any]) -> None:
        state.prune_report = report

    amount = next(
        f"{k} {v}" for k, v in options.items() if k in ("ratio", "heads", "target_macs") and v is not None
    )
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
