"""One batch from any image set: uint8 images, labels, their indices in the set, decode time."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Batch:
    """uint8 images at the model's size, their labels and indices, and how long decoding took."""

    pixels: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    seconds: float = 0.0  # decode + transform, summed over the batch's images (in its worker)
    bad: list[tuple[int, str, str]] = field(default_factory=list)  # (index, path, error)

    def pin_memory(self) -> Batch:
        """Called by the DataLoader's pinning thread (only where CUDA is: `data.loader`)."""
        self.pixels, self.labels = self.pixels.pin_memory(), self.labels.pin_memory()
        return self
