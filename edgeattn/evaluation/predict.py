"""Logits for a whole image set: from a torch module (preprocessed tensors) or a runner (uint8 images)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from edgeattn.runtime.base import Runner


@torch.no_grad()
def predict_logits(
    model: nn.Module | Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, batch_size: int = 128
) -> torch.Tensor:
    """Logits of `model` for preprocessed `inputs`, in batches (model in eval mode)."""
    if isinstance(model, nn.Module):
        model.eval()
    outs = [model(inputs[i : i + batch_size]).float() for i in range(0, len(inputs), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0)


def predict_all(runner: Runner, images: Any, label: str, batch_size: int = 64) -> np.ndarray:
    """Logits of `runner` for uint8 images, with a progress bar (long on big eval sets)."""
    from edgeattn.progress import make_progress

    chunk = max(batch_size, 256)
    outs = []
    with make_progress() as progress:
        task = progress.add_task(label, total=len(images), status=runner.runtime)
        for i in range(0, len(images), chunk):
            outs.append(runner.predict(images[i : i + chunk], batch_size=batch_size))
            progress.update(task, advance=len(images[i : i + chunk]))
    return np.concatenate(outs) if outs else np.empty((0, runner.num_classes), np.float32)
