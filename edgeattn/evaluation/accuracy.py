"""Top-k accuracy of logits, for torch tensors (training loops) and numpy arrays (runners)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from edgeattn.evaluation.predict import stream_module
from edgeattn.result import StageResult

if TYPE_CHECKING:
    from torch import nn

    from edgeattn.data.imageset import ImageSet
    from edgeattn.data.stream import FileSet
    from edgeattn.models.config import InputSpec


class Accuracy(StageResult):
    """top-1/top-5 (%) on `n` images."""

    top1: float
    top5: float
    n: int


def topk_hits(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Boolean per image: is the label among the k highest logits."""
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return (top == labels[:, None]).any(axis=1)


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    k = min(k, logits.shape[-1])
    hits = (logits.topk(k, dim=-1).indices == labels[:, None]).any(-1)
    return 100.0 * float(hits.float().mean()) if len(labels) else float("nan")


def accuracy_report(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    return {
        "top1": topk_accuracy(logits, labels, 1),
        "top5": topk_accuracy(logits, labels, 5),
        "n": int(len(labels)),
    }


def evaluate(model: nn.Module, data: ImageSet | FileSet, spec: InputSpec) -> dict:
    """top-1 / top-5 of `model` on `data` (preprocessed with `spec`), streamed batch by batch."""
    out = stream_module(model, data, spec)
    return accuracy_report(torch.from_numpy(out.logits), torch.from_numpy(out.labels))
