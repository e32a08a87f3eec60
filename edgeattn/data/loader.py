"""The one place edgeattn builds a torch `DataLoader` (eval passes over files, every training loop).

Loader workers decode with one torch thread each (torch's worker loop sets it), so N workers plus the
model's own threads is what runs. Memory is pinned only where CUDA is: page-locked host memory speeds
up nothing but a host-to-CUDA copy, so on a CPU-only machine pinning would only cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def pin_memory() -> bool:
    """Pin batches only when a CUDA device could receive them (see the module docstring)."""
    return torch.cuda.is_available()


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    workers: int,
    collate_fn: Callable[[list], Any] | None = None,
    sampler: Sampler | None = None,
    drop_last: bool = False,
    generator: torch.Generator | None = None,
    persistent: bool = False,
) -> DataLoader:
    """A loader over `dataset` in `sampler`'s order (in index order without one); `persistent` keeps
    the workers between epochs (training)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        generator=generator,
        num_workers=workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory(),
        persistent_workers=persistent and workers > 0,
        prefetch_factor=2 if workers else None,
    )
