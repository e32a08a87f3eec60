"""`PruneConfig`: every option of head pruning, written once (CLI flags, recipe keys, library)."""

from __future__ import annotations

from pydantic import Field

from edgeattn.config import StageConfig


class PruneConfig(StageConfig):
    """Structured head pruning. Give exactly one of ratio, heads, target_macs."""

    ratio: float | None = Field(None, ge=0, lt=1, description="Share of all heads to remove, in [0, 1).")
    heads: int | None = Field(None, ge=0, description="Number of heads to remove.")
    target_macs: float | None = Field(
        None, gt=0, description="MAC budget of the pruned model (e.g. 150M): prune until it fits."
    )
    importance: str = Field("taylor", description="Head importance score: taylor | l1 | entropy | random.")
    normalize: str = Field(
        "none",
        description="taylor scores: none (rank in loss units) | layer (L2 per layer, as Michel et al. 2019).",
    )
    scope: str = Field(
        "global", description="global (rank all heads together) | per-layer (same share per block)."
    )
    min_heads_per_block: int = Field(
        1, ge=0, description="Heads every block keeps; 0 lets a block lose all (it becomes residual-only)."
    )
    finetune_epochs: int = Field(0, ge=0, le=1000, description="Recovery fine-tune epochs after pruning.")
    distill: bool = Field(True, description="Fine-tune with knowledge distillation from the unpruned model.")
    iterative_steps: int = Field(
        1, ge=1, le=100, description="Score, remove a share, re-score ... in this many steps."
    )
    calib_size: int | None = Field(
        512, ge=1, description="Calibration images the importance scores are computed on (null: all)."
    )
    val_size: int | None = Field(
        None, ge=1, description="Images the before/after accuracy is measured on (null: all)."
    )
    finetune_lr: float = Field(1e-3, gt=0, le=1, description="Peak learning rate of the fine-tune.")
    batch_size: int = Field(64, ge=1, le=4096, description="Fine-tune batch size.")
    score_batch_size: int = Field(32, ge=1, le=4096, description="Batch size of the importance scoring.")

    def amounts(self) -> dict[str, float]:
        """The pruning targets that were given (a valid request has exactly one)."""
        return {
            k: v for k, v in (("ratio", self.ratio), ("heads", self.heads), ("target_macs", self.target_macs))
            if v is not None
        }  # fmt: skip
