"""Attention-head pruning: importance scores, structural head removal, recovery fine-tune, reports.

`prune_checkpoint(ckpt, data, out, PruneConfig(ratio=0.5))` (or keyword overrides of the config's
fields: `ratio=|heads=|target_macs=, importance="taylor", ...`) is the stage function the CLI (`edgeattn prune`) and recipes call. Heads are removed from the weights (qkv rows,
proj columns, per-head biases), so the pruned model is smaller and faster on every target; the
checkpoint records the kept heads per block (`ModelConfig.heads_kept`) and reloads into that shape.
"""

from edgeattn.prune.config import PruneConfig
from edgeattn.prune.core import MIN_SCORE_IMAGES, prune_checkpoint, prune_handle
from edgeattn.prune.importance import IMPORTANCE, ImportanceMethod, ScoreData, score_heads
from edgeattn.prune.report import head_importance_heatmap, markdown_report, write_reports
from edgeattn.prune.result import PruneReport
from edgeattn.prune.selection import SCOPES, Target, check_target
from edgeattn.prune.structural import head_mac_costs, keep_local, masked_heads

__all__ = [
    "IMPORTANCE",
    "MIN_SCORE_IMAGES",
    "SCOPES",
    "ImportanceMethod",
    "PruneConfig",
    "PruneReport",
    "ScoreData",
    "Target",
    "check_target",
    "head_importance_heatmap",
    "head_mac_costs",
    "keep_local",
    "markdown_report",
    "masked_heads",
    "prune_checkpoint",
    "prune_handle",
    "score_heads",
    "write_reports",
]
