"""What it takes to rebuild a model exactly: the architecture config and the input spec.

Both are plain dataclasses of JSON-able fields, so a checkpoint can store them and load with
`torch.load(weights_only=True)`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class ModelConfig:
    """Architecture of one model: registry name, classes, input size, family options, kept heads."""

    name: str
    num_classes: int = 1000
    input_size: int = 224
    options: dict[str, Any] = field(default_factory=dict)
    # Attention block path -> indices of the original heads that were kept (pruned models only).
    heads_kept: dict[str, list[int]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)


@dataclass
class InputSpec:
    """How an image becomes the model's input tensor (mirrors timm's data config)."""

    size: tuple[int, int] = (224, 224)
    channels: int = 3
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    crop_pct: float = 1.0
    layout: str = "NCHW"

    def shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.channels, *self.size)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.update(size=list(self.size), mean=list(self.mean), std=list(self.std))
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        return cls(
            size=tuple(data["size"]),
            channels=int(data.get("channels", 3)),
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
            interpolation=data.get("interpolation", "bilinear"),
            crop_pct=float(data.get("crop_pct", 1.0)),
            layout=data.get("layout", "NCHW"),
        )
