"""The in-memory image set (builtin sets, .npz files), and preprocessing from a model's input spec.

Images stay uint8 (N, 3, H, W) until a model asks for them: `to_model_input` resizes (shorter side to
size / crop_pct, bilinear/bicubic as the spec says), center-crops and normalises with the spec's
mean/std — timm's eval geometry with torch's kernel. Folders and file lists are `stream.FileSet`s
instead, with the same interface (`batches`, `pixels`, `subset`, ...), resized by timm's own transform.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from edgeattn.data.batch import Batch
from edgeattn.errors import InputError
from edgeattn.models.config import InputSpec


@dataclass
class ImageSet:
    images: torch.Tensor  # uint8 (N, 3, H, W)
    labels: torch.Tensor  # int64 (N,)
    classes: list[str]
    source: str = ""
    split: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)  # never any: arrays decode fully
    labeled: bool = True
    loader_workers: int = 0

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(
                f"images must be uint8 (N,3,H,W), got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if len(self.images) != len(self.labels):
            raise InputError(
                f"{self.source}: {len(self.images)} images but {len(self.labels)} labels",
                "give exactly one label per image",
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, n: int | None, seed: int = 0) -> ImageSet:
        """A deterministic, class-balanced-in-expectation subset of at most `n` images."""
        if n is None or n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n].sort().values
        return ImageSet(self.images[idx], self.labels[idx], self.classes, self.source, self.split)

    def take(self, indices: list[int]) -> ImageSet:
        idx = torch.as_tensor(list(indices), dtype=torch.int64)
        return ImageSet(self.images[idx], self.labels[idx], self.classes, self.source, self.split)

    def batches(self, spec: InputSpec, batch_size: int = 64) -> Iterator[Batch]:
        """The images in order, as they are (runners and `preprocess` resize them to the spec)."""
        for i in range(0, len(self), batch_size):
            idx = torch.arange(i, min(i + batch_size, len(self)))
            yield Batch(self.images[i : i + batch_size], self.labels[i : i + batch_size], idx)

    def pixels(self, spec: InputSpec) -> torch.Tensor:
        """uint8 images every runner's `prepare` takes (resized to the spec there)."""
        return self.images

    def to_model_input(self, spec: InputSpec) -> torch.Tensor:
        return preprocess(self.images, spec)

    def tensor_dataset(self, spec: InputSpec) -> TensorDataset:
        return TensorDataset(self.to_model_input(spec), self.labels)


def resize_uint8(images: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """Resize + center crop to the spec's size, still in [0, 255] float (no normalisation).

    The geometry is timm's eval transform's (torchvision `Resize` of the shorter side to
    floor(size / crop_pct), the longer side truncated, `CenterCrop` offsets rounded); the resampling
    is torch's antialiased kernel. Images already at the spec's size (what a `FileSet` yields: timm's
    own PIL transform ran in the loader) pass through untouched."""
    x = images.float()
    h, w = x.shape[-2:]
    th, tw = spec.size
    if (h, w) != (th, tw):
        scale_to = math.floor(max(th, tw) / spec.crop_pct)
        if h <= w:
            nh, nw = scale_to, max(tw, int(scale_to * w / h))
        else:
            nw, nh = scale_to, max(th, int(scale_to * h / w))
        mode = "bicubic" if spec.interpolation == "bicubic" else "bilinear"
        x = F.interpolate(x, size=(nh, nw), mode=mode, align_corners=False, antialias=True).clamp(0, 255)
        top, left = int(round((nh - th) / 2.0)), int(round((nw - tw) / 2.0))
        x = x[..., top : top + th, left : left + tw]
    return x


def normalize(x01: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """[0, 1] float images -> model input (mean/std of the spec)."""
    mean = torch.tensor(spec.mean, dtype=x01.dtype).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=x01.dtype).view(1, -1, 1, 1)
    return (x01 - mean) / std


def preprocess(images: torch.Tensor, spec: InputSpec, batch: int = 512) -> torch.Tensor:
    out = [
        normalize(resize_uint8(images[i : i + batch], spec) / 255.0, spec)
        for i in range(0, len(images), batch)
    ]
    return torch.cat(out) if out else torch.empty(0, spec.channels, *spec.size)
