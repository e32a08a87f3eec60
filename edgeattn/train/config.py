"""`TrainConfig`: every option of training — baseline training, recovery fine-tuning and QAT share it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from edgeattn.config import StageConfig


class TrainConfig(StageConfig):
    """Train (or distil) with AdamW, a cosine schedule with warm-up, label smoothing, augmentation."""

    epochs: int = Field(
        8, ge=1, le=1000, description="Training epochs (AdamW, cosine schedule, label smoothing)."
    )
    batch_size: int = Field(64, ge=1, le=4096, description="Training batch size.")
    lr: float = Field(2e-3, gt=0, le=1, description="Peak learning rate.")
    teacher: Path | None = Field(
        None, description="Distil from this checkpoint (same classes and input size)."
    )
    weight_decay: float = Field(0.05, ge=0, le=1, description="AdamW weight decay.")
    label_smoothing: float = Field(0.1, ge=0, lt=1, description="Label smoothing of the cross-entropy.")
    warmup_epochs: float = Field(0.5, ge=0, le=1000, description="Linear warm-up before the cosine decay.")
    distill_alpha: float = Field(
        0.7, ge=0, le=1, description="Weight of the distillation term when there is a teacher."
    )
    distill_temperature: float = Field(2.0, gt=0, le=100, description="Distillation temperature.")
    augment: Literal["auto", "timm", "light", "none"] = Field(
        "auto",
        description="Augmentation: timm (timm's train transform for the model's input: random resized crop, flip, colour jitter), light (random shift, brightness/contrast), none; auto: timm for image folders and file lists, light for builtin sets and .npz.",
    )
    init: Path | None = Field(
        None,
        description="Fine-tune: start from this checkpoint's weights and architecture (a new classifier when the data's classes differ).",
    )
    lora: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="Fine-tune --init with LoRA of this rank on the attention projections (classifier trained fully; merged before saving).",
    )
    lora_alpha: float | None = Field(
        None,
        gt=0,
        le=4096,
        description="LoRA scaling alpha (the update is scaled by alpha/rank) [default 2×rank].",
    )

    @field_validator("augment", mode="before")
    @classmethod
    def _augment_switch(cls, value: object) -> object:
        """Recipes written when `augment` was a switch: true is `auto`, false is `none`."""
        return {True: "auto", False: "none"}.get(value, value) if isinstance(value, bool) else value
