"""Logits for a whole image set: from a torch module (preprocessed tensors) or a runner (uint8 images),
in memory (`predict_all`) or streamed batch by batch from any image set (`stream_runner`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass
class StreamedLogits:
    """Logits and labels of one pass over an image set, and where the time went."""

    logits: np.ndarray
    labels: np.ndarray
    seconds: float = 0.0  # the whole pass
    model_seconds: float = 0.0  # inside the runner / module
    decode_seconds: float = 0.0  # decoding + resizing, summed over images (across loader workers)
    workers: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def speeds(self) -> dict[str, float | int | None]:
        """images/s of the whole pass, of the model alone, and of loading with the workers used."""
        n = len(self.labels)
        load = n * max(1, self.workers) / self.decode_seconds if self.decode_seconds > 0 else None
        return {
            "images_per_s": n / self.seconds if self.seconds > 0 else None,
            "model_images_per_s": n / self.model_seconds if self.model_seconds > 0 else None,
            "load_images_per_s": load,
            "loader_workers": self.workers,
        }


def stream_logits(
    predict: Callable[[Any], np.ndarray],
    dataset: Any,
    spec: Any,
    label: str,
    status: str = "",
    batch_size: int = 64,
    show: bool = True,
) -> StreamedLogits:
    """Run `predict` (uint8 batch -> logits) over `dataset` batch by batch, with a progress bar; only
    the logits are kept, so memory stays flat however many images there are. `show=False` for passes
    inside another progress display (one live display at a time)."""
    from rich.progress import Progress

    from edgeattn.progress import make_progress

    outs, labels = [], []
    model_s = decode_s = 0.0
    start = time.perf_counter()
    with make_progress() if show else Progress(disable=True) as progress:
        task = progress.add_task(label, total=len(dataset), status=status)
        for batch in dataset.batches(spec, max(batch_size, 64)):
            decode_s += batch.seconds
            if len(batch.labels):
                t = time.perf_counter()
                outs.append(np.asarray(predict(batch.pixels), dtype=np.float32))
                model_s += time.perf_counter() - t
                labels.append(batch.labels.numpy())
            progress.update(task, advance=len(batch.labels) + len(batch.bad))
    workers = getattr(dataset, "workers_used", 0)
    return StreamedLogits(
        logits=np.concatenate(outs) if outs else np.empty((0, 0), np.float32),
        labels=np.concatenate(labels) if labels else np.empty(0, np.int64),
        seconds=time.perf_counter() - start,
        model_seconds=model_s,
        decode_seconds=decode_s,
        workers=workers,
        skipped=list(getattr(dataset, "skipped", [])),
    )


def stream_runner(runner: Runner, dataset: Any, label: str, batch_size: int = 64) -> StreamedLogits:
    """`stream_logits` through a runner (it prepares each uint8 batch as its manifest says)."""
    out = stream_logits(
        lambda px: runner.predict(px, batch_size=batch_size),
        dataset,
        runner.input_spec,
        label,
        runner.runtime,
    )
    if out.logits.size == 0:
        out.logits = np.empty((0, runner.num_classes), np.float32)
    return out


@torch.no_grad()
def stream_module(model: nn.Module, dataset: Any, spec: Any, label: str = "evaluate") -> StreamedLogits:
    """`stream_logits` through a torch module (inputs preprocessed with `spec`, eval mode)."""
    from edgeattn.data.imageset import preprocess

    model.eval()
    return stream_logits(
        lambda px: model(preprocess(px, spec)).float().numpy(), dataset, spec, label, show=False
    )
