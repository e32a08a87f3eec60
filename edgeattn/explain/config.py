"""`ExplainConfig`: every option of `edgeattn explain`, written once (CLI flags, library)."""

from __future__ import annotations

from pydantic import Field

from edgeattn.config import StageConfig


class ExplainConfig(StageConfig):
    """Heat maps of what a model looks at."""

    method: str = Field("gradcam", description="gradcam | gradcam++ | attention | rollout.")
    layer: str | None = Field(
        None,
        description="Dotted module path to explain (default: the family's last conv stage or attention block).",
    )
    images: int = Field(8, ge=1, le=256, description="How many images of the split to explain.")
    split: str = Field("val", description="Split of --data the images come from: train, calib or val.")
    heads: bool = Field(False, description="attention: also one map per head of the block.")
    top_percent: float = Field(
        20.0, gt=0, le=100, description="--compare: IoU of the hottest this-many percent of pixels."
    )
    alpha: float = Field(0.5, ge=0, le=1, description="Opacity of the heat map over the image.")
