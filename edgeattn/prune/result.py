"""`PruneReport`: what `prune_checkpoint` did — per block, before and after, and where it wrote."""

from __future__ import annotations

from typing import Any

from edgeattn.result import StageResult


class BeforeAfter(StageResult):
    before: float
    after: float


class HeadCounts(StageResult):
    before: int
    after: int
    removed: int


class PruneTop1(StageResult):
    """top-1 (%) on `n` val images: unpruned, pruned, and after the recovery fine-tune (if any)."""

    before: float
    after_prune: float
    after_finetune: float | None = None
    n: int


class FinetuneInfo(StageResult):
    epochs: int
    distill: bool
    lr: float
    log: list[dict[str, Any]] = []


class BlockRow(StageResult):
    """One attention block: heads before/after, which original heads were kept, their first scores."""

    path: str
    kind: str
    heads_original: int
    heads_before: int
    heads_after: int
    kept: list[int]
    removed: list[int]
    scores: list[float | None]
    residual_only: bool


class HeadlessBlock(StageResult):
    path: str
    kind: str


class PruneReport(StageResult):
    checkpoint: str
    out: str | None = None
    model: str
    input_size: int
    data: str
    importance: str
    importance_description: str
    normalize: str | None
    scope: str
    target: str
    ratio: float | None
    heads_requested: int | None
    target_macs: float | None
    min_heads_per_block: int
    iterative_steps: int
    seed: int
    score_images: int
    heads: HeadCounts
    params: BeforeAfter
    macs: BeforeAfter
    top1: PruneTop1
    finetune: FinetuneInfo
    blocks: list[BlockRow]
    headless_blocks: list[HeadlessBlock]
    residual_only_blocks: list[str]
    steps: list[dict[str, Any]]
    reload_max_abs_diff: float
    heads_kept: dict[str, list[int]]
    files: dict[str, str] = {}
    seconds: float | None = None
